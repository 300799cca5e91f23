-- Service credentials managed on their own admin page (issue 14): an SSH private key for
-- Linux targets, or a password for database targets. Either way the secret stays sealed in
-- `secret_ciphertext` and is never shown again.
CREATE TYPE credential_kind AS ENUM ('ssh_key', 'password');
ALTER TABLE service_credentials ADD COLUMN kind credential_kind NOT NULL DEFAULT 'ssh_key';
