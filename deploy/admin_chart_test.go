package deploy

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// routerAdmin returns the router container's admin port and the secrets
// its volumes mount, by volume name.
func routerAdmin(t *testing.T, m manifests) (port int32, secrets map[string]string) {
	t.Helper()
	d := named[*appsv1.Deployment](t, m, "sb-switchboard-router")
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "admin" {
			port = p.ContainerPort
		}
	}
	secrets = map[string]string{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secrets[v.Name] = v.Secret.SecretName
		}
	}
	return port, secrets
}

func TestAdminAPIOnTheRoutersBehindOneServiceWithATokenSecret(t *testing.T) {
	m := render(t)
	svc := named[*corev1.Service](t, m, "sb-switchboard-admin")
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || servicePorts(svc)[9600] != "admin" {
		t.Errorf("admin Service: type %s ports %v, want ClusterIP 9600 -> admin", svc.Spec.Type, servicePorts(svc))
	}
	if svc.Spec.Selector["app.kubernetes.io/component"] != "router" {
		t.Errorf("admin Service selects %v, want the router pods", svc.Spec.Selector)
	}
	port, secrets := routerAdmin(t, m)
	if port != 9600 || secrets["admin-token"] != "sb-switchboard-admin" || secrets["admin-tls"] != "" {
		t.Errorf("router: admin port %d, secrets %v", port, secrets)
	}
	cm := named[*corev1.ConfigMap](t, m, "sb-switchboard-router")
	if cm.Data["SWITCHBOARD_ADMIN_LISTEN"] != ":9600" || cm.Data["SWITCHBOARD_ADMIN_TOKEN_FILE"] != "/etc/switchboard/admin/token" || cm.Data["SWITCHBOARD_ADMIN_CERT_FILE"] != "" {
		t.Errorf("router settings %v", cm.Data)
	}
	sec, ok := findSecret(m, "sb-switchboard-admin")
	if !ok {
		t.Fatal("no generated admin Secret")
	}
	tok := strings.Fields(string(sec.Data["token"]))
	if len(tok) != 2 || len(tok[1]) < 16 {
		t.Errorf("generated token file %q, want 'admin <token of 16 or more>'", sec.Data["token"])
	}

	// A given token, a TLS Secret, and peers for the NetworkPolicy.
	m = render(t, "--set", "admin.token=ops-1 0123456789abcdef0123", "--set", "admin.tlsSecret=admin-cert",
		"--set", "networkPolicy.enabled=true", "--set-json", `admin.allowFrom=[{"namespaceSelector":{"matchLabels":{"team":"ops"}}}]`)
	sec, _ = findSecret(m, "sb-switchboard-admin")
	if string(sec.Data["token"]) != "ops-1 0123456789abcdef0123" {
		t.Errorf("token %q, want the one given", sec.Data["token"])
	}
	_, secrets = routerAdmin(t, m)
	cm = named[*corev1.ConfigMap](t, m, "sb-switchboard-router")
	if secrets["admin-tls"] != "admin-cert" || cm.Data["SWITCHBOARD_ADMIN_CERT_FILE"] != "/etc/switchboard/admin-tls/tls.crt" || cm.Data["SWITCHBOARD_ADMIN_KEY_FILE"] != "/etc/switchboard/admin-tls/tls.key" {
		t.Errorf("with admin.tlsSecret: secrets %v, settings %v", secrets, cm.Data)
	}
	np := named[*networkingv1.NetworkPolicy](t, m, "sb-switchboard-router")
	found := false
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.IntValue() == 9600 {
				found = len(r.From) == 1 && r.From[0].NamespaceSelector != nil && r.From[0].NamespaceSelector.MatchLabels["team"] == "ops"
			}
		}
	}
	if !found {
		t.Errorf("router NetworkPolicy %v lacks the admin port from the given peers", np.Spec.Ingress)
	}

	// Without peers nothing in the cluster reaches the admin port.
	np = named[*networkingv1.NetworkPolicy](t, render(t, "--set", "networkPolicy.enabled=true"), "sb-switchboard-router")
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.IntValue() == 9600 {
				t.Errorf("admin port open without admin.allowFrom: %v", r)
			}
		}
	}

	// An existing Secret: none made, the routers mount it.
	m = render(t, "--set", "admin.existingSecret=ops-tokens")
	if _, ok := findSecret(m, "sb-switchboard-admin"); ok {
		t.Error("admin Secret made although admin.existingSecret is set")
	}
	if _, secrets = routerAdmin(t, m); secrets["admin-token"] != "ops-tokens" {
		t.Errorf("router mounts %v, want ops-tokens", secrets)
	}

	// Off: no Service, no port, no setting.
	m = render(t, "--set", "admin.enabled=false")
	if _, ok := findSecret(m, "sb-switchboard-admin"); ok {
		t.Error("admin Secret made with the admin API off")
	}
	for _, s := range all[*corev1.Service](m) {
		if s.Name == "sb-switchboard-admin" {
			t.Error("admin Service rendered with the admin API off")
		}
	}
	if port, _ := routerAdmin(t, m); port != 0 {
		t.Error("router has an admin port with the admin API off")
	}
	if cm := named[*corev1.ConfigMap](t, m, "sb-switchboard-router"); cm.Data["SWITCHBOARD_ADMIN_TOKEN_FILE"] != "" {
		t.Error("router reads a token file with the admin API off")
	}
}
