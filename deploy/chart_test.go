package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var (
	chartDir   = filepath.Join(repoRoot, "deploy", "helm", "switchboard")
	badDir     = filepath.Join(repoRoot, "deploy", "helm", "testdata", "bad-values")
	production = filepath.Join(chartDir, "ci", "production-values.yaml")
)

// kubeVersion is the oldest Kubernetes the chart supports, as in
// scripts/helm-check.sh.
const kubeVersion = "1.30.0"

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the helm binary: $HELM, or the one scripts/helm-check.sh
// builds into bin/tools (building it the first time takes minutes).
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		if p := os.Getenv("HELM"); p != "" {
			helmPath = p
			return
		}
		built := filepath.Join(repoRoot, "bin", "tools", "helm")
		if _, err := os.Stat(built); err != nil && testing.Short() {
			helmErr = fmt.Errorf("skip: no helm in bin/tools and -short is set; run scripts/helm-check.sh --install")
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "helm-check.sh"), "--install")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("scripts/helm-check.sh --install: %v\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(string(out))
	})
	if helmErr != nil {
		if strings.HasPrefix(helmErr.Error(), "skip: ") {
			t.Skip(strings.TrimPrefix(helmErr.Error(), "skip: "))
		}
		t.Fatal(helmErr)
	}
	return helmPath
}

// runHelm runs `helm template` of the chart with args added; it returns the
// manifests and helm's error output.
func runHelm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	full := append([]string{"template", "sb", chartDir, "--namespace", "chat", "--kube-version", kubeVersion}, args...)
	cmd := exec.Command(helm(t), full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// certificate and serviceMonitor mirror the fields the chart sets on the
// cert-manager and Prometheus Operator kinds, whose Go types this module
// does not import; strict decoding still refuses any other field.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		CommonName  string   `json:"commonName,omitempty"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		DNSNames    []string `json:"dnsNames"`
		Usages      []string `json:"usages"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// newObject returns an empty object of the Go type of apiVersion and kind.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "cert-manager.io/v1/Certificate":
		return &certificate{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}, true
	}
	return nil, false
}

// manifests is a rendered chart, decoded.
type manifests struct {
	objects []any
}

// render renders the chart with args and decodes every manifest strictly:
// an unknown kind or an unknown field fails the test.
func render(t *testing.T, args ...string) manifests {
	t.Helper()
	out, stderr, err := runHelm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr)
	}
	var m manifests
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("manifest is not YAML: %v\n%s", err, doc)
		}
		obj, ok := newObject(tm.APIVersion, tm.Kind)
		if !ok {
			t.Fatalf("rendered a kind the test does not know: %s %s", tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", tm.Kind, err, doc)
		}
		m.objects = append(m.objects, obj)
	}
	if len(m.objects) == 0 {
		t.Fatal("helm template rendered nothing")
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func all[T any](m manifests) []T {
	var res []T
	for _, o := range m.objects {
		if v, ok := o.(T); ok {
			res = append(res, v)
		}
	}
	return res
}

func named[T interface{ GetName() string }](t *testing.T, m manifests, name string) T {
	t.Helper()
	for _, o := range all[T](m) {
		if o.GetName() == name {
			return o
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

// podSpecs are the pod templates of every Deployment and Job, by name.
func podSpecs(m manifests) map[string]corev1.PodSpec {
	specs := map[string]corev1.PodSpec{}
	for _, d := range all[*appsv1.Deployment](m) {
		specs["Deployment "+d.Name] = d.Spec.Template.Spec
	}
	for _, j := range all[*batchv1.Job](m) {
		specs["Job "+j.Name] = j.Spec.Template.Spec
	}
	return specs
}

// valuesSets are the values the chart must render: the defaults and the
// production-like file.
var valuesSets = map[string][]string{
	"default":    nil,
	"production": {"-f", production},
}

func TestChartRendersOnlyStrictlyValidKubernetesObjects(t *testing.T) {
	for name, args := range valuesSets {
		t.Run(name, func(t *testing.T) {
			m := render(t, args...)
			kinds := map[string]int{}
			for _, o := range m.objects {
				kinds[fmt.Sprintf("%T", o)]++
			}
			if kinds["*v1.Deployment"] != 5 {
				t.Errorf("%d Deployments, want 5 (c2s, router, roster, presence, s2s): %v", kinds["*v1.Deployment"], kinds)
			}
		})
	}
}

func TestEveryPodRunsAsNonRootOnAReadOnlyRootFilesystemWithoutCapabilities(t *testing.T) {
	for name, args := range valuesSets {
		t.Run(name, func(t *testing.T) {
			for obj, spec := range podSpecs(render(t, args...)) {
				psc := spec.SecurityContext
				if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
					t.Errorf("%s: pod securityContext %+v does not pin a non-root user", obj, psc)
				}
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("%s: mounts a service account token it never uses", obj)
				}
				for _, c := range spec.Containers {
					sc := c.SecurityContext
					switch {
					case sc == nil:
						t.Errorf("%s/%s: no securityContext", obj, c.Name)
						continue
					case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
						t.Errorf("%s/%s: root filesystem is writable", obj, c.Name)
					case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
						t.Errorf("%s/%s: privilege escalation allowed", obj, c.Name)
					case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
						t.Errorf("%s/%s: capabilities %+v, want all dropped", obj, c.Name, sc.Capabilities)
					}
					if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
						t.Errorf("%s/%s: resources %+v lack CPU and memory requests or a memory limit", obj, c.Name, c.Resources)
					}
				}
			}
		})
	}
}

func TestEveryDeploymentProbesHealthzAndReadyzOnItsHealthPort(t *testing.T) {
	for _, d := range all[*appsv1.Deployment](render(t)) {
		c := d.Spec.Template.Spec.Containers[0]
		port := ""
		for _, p := range c.Ports {
			if p.ContainerPort == 8080 {
				port = p.Name
			}
		}
		if port == "" {
			t.Errorf("%s: no container port 8080 (SWITCHBOARD_HEALTH_LISTEN)", d.Name)
		}
		for kind, want := range map[string]struct {
			probe *corev1.Probe
			path  string
		}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
			p := want.probe
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", d.Name, kind)
				continue
			}
			if p.HTTPGet.Path != want.path || p.HTTPGet.Port.String() != port {
				t.Errorf("%s: %s probe GET %s on port %s, want %s on %s", d.Name, kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), want.path, port)
			}
		}
	}
}

func TestMigrationJobRunsRosterMigrateAsPreInstallAndPreUpgradeHook(t *testing.T) {
	m := render(t)
	job := named[*batchv1.Job](t, m, "sb-switchboard-migrate")
	if got := job.Annotations["helm.sh/hook"]; got != "pre-install,pre-upgrade" {
		t.Errorf("helm.sh/hook %q, want pre-install,pre-upgrade", got)
	}
	if got := job.Annotations["helm.sh/hook-delete-policy"]; !strings.Contains(got, "before-hook-creation") {
		t.Errorf("helm.sh/hook-delete-policy %q: a failed Job would block the next upgrade", got)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if !strings.Contains(c.Image, "/switchboard-roster:") || len(c.Args) != 1 || c.Args[0] != "migrate" {
		t.Errorf("job runs %s %v, want the roster image with args [migrate]", c.Image, c.Args)
	}
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %s", job.Spec.Template.Spec.RestartPolicy)
	}
	var dsnSecret string
	for _, e := range c.Env {
		if e.Name == "SWITCHBOARD_POSTGRES_DSN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			dsnSecret = e.ValueFrom.SecretKeyRef.Name
		}
	}
	// On a first install the release's Secrets do not exist while pre-install
	// hooks run: the DSN must come from a hook that runs before the Job.
	s := named[*corev1.Secret](t, m, dsnSecret)
	sw, _ := strconv.Atoi(s.Annotations["helm.sh/hook-weight"])
	jw, _ := strconv.Atoi(job.Annotations["helm.sh/hook-weight"])
	if s.Annotations["helm.sh/hook"] != job.Annotations["helm.sh/hook"] || sw >= jw {
		t.Errorf("DSN Secret %s hook %q weight %q: want the Job's hooks with a lower weight than %q",
			s.Name, s.Annotations["helm.sh/hook"], s.Annotations["helm.sh/hook-weight"], job.Annotations["helm.sh/hook-weight"])
	}
	cm := named[*corev1.ConfigMap](t, m, "sb-switchboard-roster")
	if cm.Data["SWITCHBOARD_MIGRATE_AT_START"] != "false" {
		t.Errorf("roster migrates at start (%q) although the Job owns migrations", cm.Data["SWITCHBOARD_MIGRATE_AT_START"])
	}

	// With an existing Secret the Job reads it directly.
	m = render(t, "-f", production)
	job = named[*batchv1.Job](t, m, "sb-switchboard-migrate")
	ref := job.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef
	if ref.Name != "switchboard-postgres" || ref.Key != "dsn" {
		t.Errorf("production job reads DSN from %s/%s, want the existing switchboard-postgres/dsn", ref.Name, ref.Key)
	}
}

func servicePorts(s *corev1.Service) map[int32]string {
	ports := map[int32]string{}
	for _, p := range s.Spec.Ports {
		ports[p.Port] = p.TargetPort.String()
	}
	return ports
}

func TestServicesExposeTheXMPPAndGRPCPortsWithAConfigurableType(t *testing.T) {
	m := render(t)
	c2s := named[*corev1.Service](t, m, "sb-switchboard-c2s")
	if c2s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("c2s Service type %s, want LoadBalancer by default", c2s.Spec.Type)
	}
	for svc, want := range map[string][]int32{
		"sb-switchboard-c2s":      {5222, 5223},
		"sb-switchboard-roster":   {9090, 9091},
		"sb-switchboard-presence": {9190},
	} {
		s := named[*corev1.Service](t, m, svc)
		ports := servicePorts(s)
		if len(ports) != len(want) {
			t.Errorf("%s ports %v, want %v", svc, ports, want)
		}
		for _, p := range want {
			if ports[p] == "" {
				t.Errorf("%s lacks port %d (has %v)", svc, p, ports)
			}
		}
	}

	m = render(t, "--set", "c2s.service.type=NodePort", "--set", "c2s.directTLS=false", "--set", "c2s.service.s2sPort=true")
	c2s = named[*corev1.Service](t, m, "sb-switchboard-c2s")
	ports := servicePorts(c2s)
	if c2s.Spec.Type != corev1.ServiceTypeNodePort || ports[5223] != "" || ports[5269] == "" || ports[5222] == "" {
		t.Errorf("with NodePort, no direct TLS and s2sPort: type %s ports %v", c2s.Spec.Type, ports)
	}
	cm := named[*corev1.ConfigMap](t, m, "sb-switchboard-c2s")
	if cm.Data["SWITCHBOARD_C2S_DIRECT_TLS_LISTEN"] != "off" {
		t.Errorf("direct TLS off in values but c2s listens on %q", cm.Data["SWITCHBOARD_C2S_DIRECT_TLS_LISTEN"])
	}
}

// The per-address abuse limits need the clients' addresses: with the
// Cluster traffic policy c2s sees node addresses, so the chart exempts
// everyone unless told otherwise.
func TestC2sPerAddressLimitsFollowTheTrafficPolicy(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "0.0.0.0/0,::/0"},
		{[]string{"--set", "c2s.service.externalTrafficPolicy=Local"}, "127.0.0.0/8,::1/128"},
		{[]string{"--set", "c2s.limitExempt=10.0.0.0/8"}, "10.0.0.0/8"},
		{[]string{"--set", "c2s.service.externalTrafficPolicy=Local", "--set", "c2s.limitExempt=none"}, "none"},
	} {
		cm := named[*corev1.ConfigMap](t, render(t, c.args...), "sb-switchboard-c2s")
		if got := cm.Data["SWITCHBOARD_C2S_LIMIT_EXEMPT"]; got != c.want {
			t.Errorf("%v: SWITCHBOARD_C2S_LIMIT_EXEMPT %q, want %q", c.args, got, c.want)
		}
	}
	// Likewise s2s's inbound streams per address: off unless Local.
	for policy, want := range map[string]string{"Cluster": "0", "Local": ""} {
		cm := named[*corev1.ConfigMap](t, render(t, "--set", "s2s.enabled=true", "--set", "s2s.service.externalTrafficPolicy="+policy), "sb-switchboard-s2s")
		if got := cm.Data["SWITCHBOARD_MAX_INBOUND_PER_IP"]; got != want {
			t.Errorf("s2s with %s: SWITCHBOARD_MAX_INBOUND_PER_IP %q, want %q (unset: the default)", policy, got, want)
		}
	}
}

func TestC2sGracePeriodCoversPreStopAndDrain(t *testing.T) {
	for name, args := range valuesSets {
		t.Run(name, func(t *testing.T) {
			m := render(t, args...)
			d := named[*appsv1.Deployment](t, m, "sb-switchboard-c2s")
			spec := d.Spec.Template.Spec
			pre := spec.Containers[0].Lifecycle
			if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil {
				t.Fatal("c2s has no preStop sleep: new connections could arrive after its listeners close")
			}
			cm := named[*corev1.ConfigMap](t, m, "sb-switchboard-c2s")
			shutdown, err := time.ParseDuration(cm.Data["SWITCHBOARD_SHUTDOWN_TIMEOUT"])
			if err != nil {
				t.Fatal(err)
			}
			// SIGTERM drains the clients within the shutdown timeout,
			// then the process stops within it again.
			need := time.Duration(pre.PreStop.Sleep.Seconds)*time.Second + 2*shutdown
			if grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; grace <= need {
				t.Errorf("grace period %v does not outlast preStop %ds + drain and stop 2 x %v", grace, pre.PreStop.Sleep.Seconds, shutdown)
			}
			if _, err := time.ParseDuration(cm.Data["SWITCHBOARD_DRAIN_SPREAD"]); err != nil {
				t.Errorf("SWITCHBOARD_DRAIN_SPREAD: %v", err)
			}
			if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
				t.Errorf("rollout may take a c2s pod away before its replacement is ready: %+v", d.Spec.Strategy)
			}
		})
	}
}

func TestC2sAndRouterHaveAutoscalersAndDisruptionBudgets(t *testing.T) {
	m := render(t)
	for _, c := range []string{"c2s", "router"} {
		name := "sb-switchboard-" + c
		hpa := named[*autoscalingv2.HorizontalPodAutoscaler](t, m, name)
		if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != name {
			t.Errorf("HPA %s scales %+v", name, hpa.Spec.ScaleTargetRef)
		}
		pdb := named[*policyv1.PodDisruptionBudget](t, m, name)
		if pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != c {
			t.Errorf("PDB %s selects %v", name, pdb.Spec.Selector.MatchLabels)
		}
		if d := named[*appsv1.Deployment](t, m, name); d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas while its HPA owns them", name)
		}
	}
	if n := len(all[*autoscalingv2.HorizontalPodAutoscaler](m)); n != 2 {
		t.Errorf("%d HPAs, want 2", n)
	}
}

func TestPodsOfAServiceAreSpreadOverNodes(t *testing.T) {
	for mode, args := range map[string][]string{"soft": nil, "hard": {"--set", "podAntiAffinity=hard"}} {
		for _, d := range all[*appsv1.Deployment](render(t, args...)) {
			aff := d.Spec.Template.Spec.Affinity
			if aff == nil || aff.PodAntiAffinity == nil {
				t.Errorf("%s %s: no pod anti-affinity", mode, d.Name)
				continue
			}
			var sel *metav1.LabelSelector
			var key string
			if mode == "soft" && len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 1 {
				term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
				sel, key = term.LabelSelector, term.TopologyKey
			}
			if mode == "hard" && len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 1 {
				term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
				sel, key = term.LabelSelector, term.TopologyKey
			}
			if sel == nil || key != "kubernetes.io/hostname" || sel.MatchLabels["app.kubernetes.io/component"] != d.Spec.Selector.MatchLabels["app.kubernetes.io/component"] {
				t.Errorf("%s %s: anti-affinity %+v does not spread its own pods over hosts", mode, d.Name, aff.PodAntiAffinity)
			}
		}
	}
}

func TestRosterInternalListenerIsReachableOnlyFromC2sAndRouterPods(t *testing.T) {
	np := named[*networkingv1.NetworkPolicy](t, render(t), "sb-switchboard-roster")
	var allowed []string
	for _, rule := range np.Spec.Ingress {
		opens := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.IntValue() == 9091 {
				opens = true
			}
		}
		if !opens {
			continue
		}
		if len(rule.From) == 0 {
			t.Fatalf("rule %+v opens 9091 to any source", rule)
		}
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
				t.Fatalf("peer %+v is not a pod of this namespace", peer)
			}
			allowed = append(allowed, peer.PodSelector.MatchLabels["app.kubernetes.io/component"])
		}
	}
	if strings.Join(allowed, ",") != "c2s,router" {
		t.Errorf("9091 reachable from components %v, want exactly c2s and router", allowed)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policyTypes %v", np.Spec.PolicyTypes)
	}
}

func TestProductionValuesMountIssuedCertificatesWhereTheBinariesLook(t *testing.T) {
	m := render(t, "-f", production)
	certs := all[*certificate](m)
	if len(certs) != 2 {
		t.Fatalf("%d Certificates, want the gRPC and the c2s one", len(certs))
	}
	grpc := named[*certificate](t, m, "sb-switchboard-grpc-tls")
	for _, dns := range []string{"sb-switchboard-roster.chat.svc", "sb-switchboard-presence.chat.svc"} {
		if !contains(grpc.Spec.DNSNames, dns) {
			t.Errorf("gRPC certificate lacks %s, which the clients dial and verify: %v", dns, grpc.Spec.DNSNames)
		}
	}
	c2sCert := named[*certificate](t, m, "sb-switchboard-c2s-tls")
	if !contains(c2sCert.Spec.DNSNames, "chat.example.com") {
		t.Errorf("c2s certificate names %v, not the domain", c2sCert.Spec.DNSNames)
	}
	for _, d := range all[*appsv1.Deployment](m) {
		mounts := map[string]string{}
		c := d.Spec.Template.Spec.Containers[0]
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = vm.Name
		}
		secretOf := map[string]string{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				secretOf[v.Name] = v.Secret.SecretName
			}
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if cm, ok := findConfigMap(m, d.Name); ok {
			for k, v := range cm.Data {
				env[k] = v
			}
		}
		files := map[string]string{
			"SWITCHBOARD_GRPC_TLS_CERT": grpc.Spec.SecretName,
			"SWITCHBOARD_GRPC_TLS_KEY":  grpc.Spec.SecretName,
			"SWITCHBOARD_GRPC_TLS_CA":   grpc.Spec.SecretName,
		}
		if strings.HasSuffix(d.Name, "-s2s") {
			files = map[string]string{} // no gRPC; its own certificate is optional
		}
		if strings.HasSuffix(d.Name, "-c2s") {
			files["SWITCHBOARD_CERT_FILE"] = c2sCert.Spec.SecretName
			files["SWITCHBOARD_KEY_FILE"] = c2sCert.Spec.SecretName
		}
		for v, secret := range files {
			path := env[v]
			vol := mounts[filepath.Dir(path)]
			if path == "" || secretOf[vol] != secret {
				t.Errorf("%s: %s=%q is not a file of the mounted Secret %s", d.Name, v, path, secret)
			}
		}
	}
}

func findConfigMap(m manifests, name string) (*corev1.ConfigMap, bool) {
	for _, cm := range all[*corev1.ConfigMap](m) {
		if cm.Name == name {
			return cm, true
		}
	}
	return nil, false
}

func TestServiceMonitorSelectsTheHealthService(t *testing.T) {
	m := render(t, "-f", production)
	sm := named[*serviceMonitor](t, m, "sb-switchboard")
	svc := named[*corev1.Service](t, m, "sb-switchboard-health")
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the health Service has %q", k, v, svc.Labels[k])
		}
	}
	if len(sm.Spec.Endpoints) != 1 || servicePortNamed(svc, sm.Spec.Endpoints[0].Port) != 8080 || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v do not scrape /metrics on port 8080", sm.Spec.Endpoints)
	}
	// Every service serves /metrics on its health listener (8080): the
	// headless Service must select every Deployment's pods, and each
	// must listen there.
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 && svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("health Service ports %+v: want one port to 8080", svc.Spec.Ports)
	}
	for _, d := range all[*appsv1.Deployment](m) {
		for k, v := range svc.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("%s: its pods have %s=%q; the health Service selects %q, so they are not scraped", d.Name, k, d.Spec.Template.Labels[k], v)
			}
		}
		listens := false
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			listens = listens || p.ContainerPort == 8080
		}
		if !listens {
			t.Errorf("%s: no container port 8080 for /metrics", d.Name)
		}
	}
	if got := all[*serviceMonitor](render(t)); len(got) != 0 {
		t.Errorf("ServiceMonitor rendered by default; it needs the Prometheus Operator's CRD")
	}
}

func servicePortNamed(s *corev1.Service, name string) int32 {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return p.Port
		}
	}
	return 0
}

// TestBadValuesAreRefusedWithTheirOwnError renders the chart with each file
// of testdata/bad-values, which names in a "# want:" line the text the
// error must contain, so a file refused for another reason does not pass.
func TestBadValuesAreRefusedWithTheirOwnError(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(badDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad values files in %s (%v)", badDir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := regexp.MustCompile(`(?m)^# want: (.+)$`).FindSubmatch(raw)
			if want == nil {
				t.Fatal(`no "# want:" line`)
			}
			_, stderr, err := runHelm(t, "-f", f)
			if err == nil {
				t.Fatal("the chart rendered these values")
			}
			if !strings.Contains(stderr, string(want[1])) {
				t.Errorf("refused, but not for %q:\n%s", want[1], stderr)
			}
		})
	}
}

// TestChartSetsOnlySettingsTheBinariesDeclare runs each service binary,
// built as its Dockerfile builds it, with --help and checks that every
// SWITCHBOARD_* variable the chart gives that service is one it reads: a
// misspelt or renamed variable would be ignored silently.
func TestChartSetsOnlySettingsTheBinariesDeclare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary; skipped with -short")
	}
	bins := builtBinaries(t)
	m := render(t, "-f", production)
	for _, s := range imageServices {
		t.Run(s, func(t *testing.T) {
			if e := buildErrs[s]; e != "" {
				t.Fatalf("building: %s", e)
			}
			help, _ := exec.Command(bins[s], "--help").CombinedOutput()
			d := named[*appsv1.Deployment](t, m, "sb-switchboard-"+s)
			c := d.Spec.Template.Spec.Containers[0]
			vars := map[string]bool{}
			for _, e := range c.Env {
				vars[e.Name] = true
			}
			for _, from := range c.EnvFrom {
				cm := named[*corev1.ConfigMap](t, m, from.ConfigMapRef.Name)
				for k := range cm.Data {
					vars[k] = true
				}
			}
			if len(vars) < 5 {
				t.Fatalf("only %d variables found for %s: %v", len(vars), s, vars)
			}
			for v := range vars {
				if !strings.Contains(string(help), "(env "+v+")") {
					t.Errorf("the chart sets %s, which `%s --help` does not list", v, s)
				}
			}
		})
	}
}

func TestS2sServesPort5269WithAConfigurableTypeAndReadsTheDialbackSecretFromASecret(t *testing.T) {
	m := render(t, "--set", "s2s.service.type=NodePort")
	svc := named[*corev1.Service](t, m, "sb-switchboard-s2s")
	if svc.Spec.Type != corev1.ServiceTypeNodePort || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5269 {
		t.Errorf("s2s Service: type %s ports %v, want NodePort with 5269", svc.Spec.Type, svc.Spec.Ports)
	}
	d := named[*appsv1.Deployment](t, m, "sb-switchboard-s2s")
	var ref *corev1.SecretKeySelector
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "SWITCHBOARD_DIALBACK_SECRET" && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil {
		t.Fatal("SWITCHBOARD_DIALBACK_SECRET does not come from a Secret")
	}
	sec := named[*corev1.Secret](t, m, ref.Name)
	if v := sec.Data[ref.Key]; len(v) < 32 {
		t.Errorf("generated dialback secret has %d bytes, want at least 32", len(v))
	}
	m = render(t, "--set", "s2s.dialback.existingSecret=mine", "--set", "s2s.dialback.existingSecretKey=k")
	if _, ok := findSecret(m, "sb-switchboard-s2s-dialback"); ok {
		t.Error("a dialback Secret is made although an existing one is named")
	}
	m = render(t, "--set", "s2s.enabled=false")
	for _, d := range all[*appsv1.Deployment](m) {
		if strings.HasSuffix(d.Name, "-s2s") {
			t.Error("s2s deployed with s2s.enabled=false")
		}
	}
}

func findSecret(m manifests, name string) (*corev1.Secret, bool) {
	for _, s := range all[*corev1.Secret](m) {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}
