// Package deploy holds the files of Bulwark's docker-compose cluster — the
// Bulwark config mounted into the workers (bulwark.yaml), the Temporal schema
// and namespace jobs (temporal/), the MinIO bucket job (minio/) and the
// Oracle first-start scripts (oracle-init/) — next to the tests that check
// them and the repository's docker-compose.yml, Dockerfile and .env.example
// without a Docker engine. It has no Go code of its own.
package deploy
