// Package deploy holds no code: its tests check the Helm chart in
// helm/switchboard and the services' Dockerfiles. The chart tests run the
// helm that scripts/helm-check.sh builds from its Go module (the first run
// builds it, which takes minutes); the image tests build each service the
// way its Dockerfile does and check that the binary is static.
package deploy
