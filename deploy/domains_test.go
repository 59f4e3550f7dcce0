package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

var domainsValues = filepath.Join(repoRoot, "deploy", "helm", "testdata", "domains-values.yaml")

// settingsOf is a container's SWITCHBOARD_* variables: its env and the
// ConfigMaps it reads.
func settingsOf(t *testing.T, m manifests, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			for k, v := range named[*corev1.ConfigMap](t, m, from.ConfigMapRef.Name).Data {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// TestDomainsAreServedWithTheirCertificatesMountedPerDomain renders a
// release of four domains: every service that cares gets all of them,
// the default first; c2s and s2s mount each domain's Secret as a whole
// (so that the kubelet's updates reach the pod) at <cert dir>/<domain>,
// where the binaries look for tls.crt and tls.key; cert-manager is asked
// for the certificate of the domain that wants one.
func TestDomainsAreServedWithTheirCertificatesMountedPerDomain(t *testing.T) {
	m := render(t, "-f", domainsValues)
	const all4 = "a.example,b.example,c.example,d.example"
	wantSecrets := map[string]string{
		"b.example": "b-example-tls",
		"c.example": "sb-switchboard-domain-c-example",
	}
	for _, name := range []string{"c2s", "router", "s2s"} {
		d := named[*appsv1.Deployment](t, m, "sb-switchboard-"+name)
		c := d.Spec.Template.Spec.Containers[0]
		env := settingsOf(t, m, c)
		if env["SWITCHBOARD_DOMAIN"] != all4 {
			t.Errorf("%s: SWITCHBOARD_DOMAIN=%q, want %q", name, env["SWITCHBOARD_DOMAIN"], all4)
		}
		if name == "router" {
			if _, ok := env["SWITCHBOARD_CERT_DIR"]; ok {
				t.Error("router: given a certificate directory it has no use for")
			}
			continue
		}
		dir := env["SWITCHBOARD_CERT_DIR"]
		if dir == "" {
			t.Fatalf("%s: no SWITCHBOARD_CERT_DIR", name)
		}
		secretOf := map[string]string{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				secretOf[v.Name] = v.Secret.SecretName
			}
		}
		got := map[string]string{}
		for _, vm := range c.VolumeMounts {
			if filepath.Dir(vm.MountPath) != dir {
				continue
			}
			if vm.SubPath != "" || !vm.ReadOnly {
				t.Errorf("%s: %s is mounted with subPath %q, readOnly %v; want the whole Secret, read-only", name, vm.MountPath, vm.SubPath, vm.ReadOnly)
			}
			got[filepath.Base(vm.MountPath)] = secretOf[vm.Name]
		}
		if len(got) != len(wantSecrets) {
			t.Errorf("%s: certificate directories %v, want %v", name, got, wantSecrets)
		}
		for dom, secret := range wantSecrets {
			if got[dom] != secret {
				t.Errorf("%s: %s/%s holds Secret %q, want %q", name, dir, dom, got[dom], secret)
			}
		}
	}
	var issued []string
	for _, c := range all[*certificate](m) {
		issued = append(issued, c.Spec.SecretName)
		if c.Spec.SecretName == "sb-switchboard-domain-c-example" {
			if !slices.Equal(c.Spec.DNSNames, []string{"c.example", "chat.c.example"}) {
				t.Errorf("c.example certificate names %v", c.Spec.DNSNames)
			}
			if c.Spec.IssuerRef.Name != "letsencrypt" {
				t.Errorf("c.example certificate issued by %q, want c2sTLS's issuer", c.Spec.IssuerRef.Name)
			}
		}
	}
	slices.Sort(issued)
	if strings.Join(issued, " ") != "sb-switchboard-c2s-tls sb-switchboard-domain-c-example" {
		t.Errorf("Certificates for %v, want the release domain's and c.example's", issued)
	}

	// One domain, the default: no certificate directory at all.
	m = render(t)
	for _, name := range []string{"c2s", "s2s"} {
		env := settingsOf(t, m, named[*appsv1.Deployment](t, m, "sb-switchboard-"+name).Spec.Template.Spec.Containers[0])
		if env["SWITCHBOARD_DOMAIN"] != "localhost" {
			t.Errorf("%s: SWITCHBOARD_DOMAIN=%q by default", name, env["SWITCHBOARD_DOMAIN"])
		}
		if _, ok := env["SWITCHBOARD_CERT_DIR"]; ok {
			t.Errorf("%s: a certificate directory without domains", name)
		}
	}
	// s2s.domains still narrows what s2s federates.
	m = render(t, "-f", domainsValues, "--set", "s2s.domains={b.example}")
	env := settingsOf(t, m, named[*appsv1.Deployment](t, m, "sb-switchboard-s2s").Spec.Template.Spec.Containers[0])
	if env["SWITCHBOARD_DOMAIN"] != "b.example" {
		t.Errorf("s2s with s2s.domains set: SWITCHBOARD_DOMAIN=%q", env["SWITCHBOARD_DOMAIN"])
	}
}
