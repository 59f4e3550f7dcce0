package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the repository root: this package's directory is deploy/.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

// imageServices are the services that have a binary, hence a Dockerfile.
var imageServices = []string{"c2s", "router", "roster", "presence", "s2s"}

// dockerfile is what the tests need from one Dockerfile.
type dockerfile struct {
	froms     []string // the image of each FROM, in order
	finalUser string   // the last USER of the final stage
	buildDir  string   // WORKDIR of the go build step, inside the image
	buildEnv  []string // KEY=VALUE assignments before "go build"
	buildArgs []string // the arguments after "go build"
}

// parseDockerfile reads the instructions the image tests rely on. It joins
// continued lines and splits the go build step's words as a shell would
// for the quoting this repository uses (double quotes, no expansions).
func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		d       dockerfile
		workdir = "/"
		logical []string
		pending string
	)
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			pending += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical = append(logical, pending+trimmed)
		pending = ""
	}
	for _, inst := range logical {
		op, rest, _ := strings.Cut(inst, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(op) {
		case "FROM":
			d.froms = append(d.froms, strings.Fields(rest)[0])
			d.finalUser = ""
		case "WORKDIR":
			if filepath.IsAbs(rest) {
				workdir = rest
			} else {
				workdir = filepath.Join(workdir, rest)
			}
		case "USER":
			d.finalUser = rest
		case "RUN":
			words := shellWords(t, rest)
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				words = words[1:] // BuildKit flags such as --mount
			}
			i := 0
			for i < len(words) && strings.Contains(words[i], "=") {
				i++
			}
			if i+1 < len(words) && words[i] == "go" && words[i+1] == "build" {
				d.buildDir = workdir
				d.buildEnv = words[:i]
				d.buildArgs = words[i+2:]
			}
		}
	}
	return d
}

// shellWords splits s at blanks, keeping double-quoted text together.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func dockerfilePath(service string) string {
	return filepath.Join(repoRoot, "services", service, "Dockerfile")
}

var (
	buildOnce sync.Once
	builtBins map[string]string
	buildErrs map[string]string
)

// builtBinaries builds every service once per test run, as its Dockerfile
// does: same environment, same flags, in the same directory of the tree
// (the Dockerfile's /src is the repository root). Only -o changes.
func builtBinaries(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		builtBins = map[string]string{}
		buildErrs = map[string]string{}
		dir, err := os.MkdirTemp("", "switchboard-images-")
		if err != nil {
			buildErrs["*"] = err.Error()
			return
		}
		for _, s := range imageServices {
			d := parseDockerfile(t, dockerfilePath(s))
			if d.buildArgs == nil {
				buildErrs[s] = "no RUN ... go build line"
				continue
			}
			rel, err := filepath.Rel("/src", d.buildDir)
			if err != nil || strings.HasPrefix(rel, "..") {
				buildErrs[s] = "go build runs outside /src: " + d.buildDir
				continue
			}
			out := filepath.Join(dir, s)
			args := append([]string{"build"}, replaceOutput(d.buildArgs, out)...)
			cmd := exec.Command("go", args...)
			cmd.Dir = filepath.Join(repoRoot, rel)
			cmd.Env = append(os.Environ(), d.buildEnv...)
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErrs[s] = err.Error() + "\n" + string(b)
				continue
			}
			builtBins[s] = out
		}
	})
	if e := buildErrs["*"]; e != "" {
		t.Fatal(e)
	}
	return builtBins
}

// replaceOutput returns args with the value of -o set to out.
func replaceOutput(args []string, out string) []string {
	res := append([]string(nil), args...)
	for i, a := range res {
		if a == "-o" && i+1 < len(res) {
			res[i+1] = out
			return res
		}
		if strings.HasPrefix(a, "-o=") {
			res[i] = "-o=" + out
			return res
		}
	}
	return append([]string{"-o", out}, res...)
}

func TestDockerfilesBuildStaticBinariesWithoutCgoAndTrimmedPaths(t *testing.T) {
	for _, s := range imageServices {
		d := parseDockerfile(t, dockerfilePath(s))
		if !contains(d.buildEnv, "CGO_ENABLED=0") {
			t.Errorf("%s: go build runs without CGO_ENABLED=0 (env %v)", s, d.buildEnv)
		}
		if !contains(d.buildArgs, "-trimpath") {
			t.Errorf("%s: go build runs without -trimpath (args %v)", s, d.buildArgs)
		}
	}
}

func TestDockerfileBinariesAreStaticallyLinked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary; skipped with -short")
	}
	bins := builtBinaries(t)
	for _, s := range imageServices {
		t.Run(s, func(t *testing.T) {
			if e := buildErrs[s]; e != "" {
				t.Fatalf("building as services/%s/Dockerfile does: %s", s, e)
			}
			f, err := elf.Open(bins[s])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("has a PT_INTERP program header: dynamically linked, distroless/static cannot run it")
				}
				if p.Type == elf.PT_DYNAMIC {
					t.Errorf("has a PT_DYNAMIC program header")
				}
			}
			libs, err := f.ImportedLibraries()
			if err != nil {
				t.Fatal(err)
			}
			if len(libs) > 0 {
				t.Errorf("needs shared libraries (DT_NEEDED): %v", libs)
			}
		})
	}
}

func TestDockerfilesRunAsNumericNonRootUserOnAStaticBase(t *testing.T) {
	for _, s := range imageServices {
		d := parseDockerfile(t, dockerfilePath(s))
		if len(d.froms) < 2 {
			t.Errorf("%s: %d stages, want a builder and a final stage", s, len(d.froms))
			continue
		}
		if !strings.HasPrefix(d.froms[0], "golang:") {
			t.Errorf("%s: builder stage is %q, want a golang image", s, d.froms[0])
		}
		final := d.froms[len(d.froms)-1]
		if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
			t.Errorf("%s: final stage is %q, want scratch or distroless/static", s, final)
		}
		uid, _, _ := strings.Cut(d.finalUser, ":")
		n, err := strconv.Atoi(uid)
		switch {
		case d.finalUser == "":
			t.Errorf("%s: the final stage sets no USER, so it runs as root", s)
		case err != nil:
			t.Errorf("%s: USER %q is not numeric; Kubernetes' runAsNonRoot cannot verify a name", s, d.finalUser)
		case n == 0:
			t.Errorf("%s: USER %q is root", s, d.finalUser)
		}
	}
}

func TestParseDockerfileReadsTheLastStagesUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	text := "FROM golang:1 AS build\nUSER 1000\nWORKDIR /src/x\n" +
		"RUN --mount=type=cache,target=/c \\\n    CGO_ENABLED=0 go build -ldflags=\"-s -w\" -o /out/x ./cmd/x\n" +
		"FROM scratch\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := parseDockerfile(t, path)
	if d.finalUser != "" {
		t.Errorf("final user %q, want none: the USER belongs to the builder", d.finalUser)
	}
	if d.buildDir != "/src/x" || !contains(d.buildArgs, "-ldflags=-s -w") || !contains(d.buildEnv, "CGO_ENABLED=0") {
		t.Errorf("parsed %+v", d)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
