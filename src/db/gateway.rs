//! What the SSH gateway reads: the owner of a registered key, and where and as whom a
//! session's connection goes upstream.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// The enabled account a registered public key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub user_id: Uuid,
    pub display_name: String,
}

/// The owner of the key with `fingerprint` (`SHA256:...`), if their account is enabled; the
/// key's last use is noted.
pub async fn key_owner(
    db: impl PgExecutor<'_>,
    fingerprint: &str,
) -> Result<Option<KeyOwner>, sqlx::Error> {
    sqlx::query_as!(
        KeyOwner,
        "UPDATE user_ssh_keys k SET last_used_at = now()
         FROM users u
         WHERE k.fingerprint = $1 AND u.id = k.user_id AND NOT u.disabled
         RETURNING u.id AS user_id, u.display_name",
        fingerprint,
    )
    .fetch_optional(db)
    .await
}

/// The display name of an enabled account.
pub async fn enabled_user(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT display_name FROM users WHERE id = $1 AND NOT disabled",
        id
    )
    .fetch_optional(db)
    .await
}

/// Where a session's connection goes, and how it is recorded.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub address: String,
    pub port: i32,
    pub login_account: Option<String>,
    pub password_ciphertext: Option<Vec<u8>>,
    /// The sealed private half of the session's own SSH key, tried before the password.
    pub ssh_key_ciphertext: Option<Vec<u8>>,
    /// The pinned host key (`type base64`) the grant used, else the resource's.
    pub host_key: Option<String>,
    pub file_transfer: bool,
    pub record_input: bool,
}

/// The upstream of session `id`.
pub async fn upstream(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Upstream>, sqlx::Error> {
    sqlx::query_as!(
        Upstream,
        r#"SELECT s.resource_address AS address, s.resource_port AS "port!", s.login_account,
                s.password_ciphertext, s.ssh_key_ciphertext,
                coalesce((SELECT p.host_key FROM provision_steps p
                          WHERE p.session_id = s.id AND p.action = 'grant'
                          ORDER BY p.round DESC LIMIT 1),
                         res.host_key) AS host_key,
                coalesce(a.file_transfer, false) AS "file_transfer!",
                coalesce(cp.record_input, false) AS "record_input!"
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         LEFT JOIN resources res ON res.id = s.resource_id
         LEFT JOIN activities a ON a.id = r.activity_id
         LEFT JOIN connection_profiles cp ON cp.id = r.profile_id
         WHERE s.id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// When session `id` ends now (extensions move it).
pub async fn ends_at(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar!("SELECT ends_at FROM activity_sessions WHERE id = $1", id)
        .fetch_optional(db)
        .await
}

/// The running SSH gateway as the Connect page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub port: u16,
    pub fingerprint: String,
}

const ANNOUNCED: &str = "ssh_gateway";

/// Records the gateway's port and host key fingerprint for the Connect page (every instance
/// shares one host key file, as they share the key file).
pub async fn announce(
    db: impl PgExecutor<'_>,
    port: u16,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO installation (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        ANNOUNCED,
        format!("{port} {fingerprint}"),
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// The gateway's port and host key fingerprint, if one was started on this database.
pub async fn announced(db: impl PgExecutor<'_>) -> Result<Option<Announced>, sqlx::Error> {
    let value = sqlx::query_scalar!("SELECT value FROM installation WHERE key = $1", ANNOUNCED)
        .fetch_optional(db)
        .await?;
    Ok(value.and_then(|v| {
        let (port, fingerprint) = v.split_once(' ')?;
        Some(Announced {
            port: port.parse().ok()?,
            fingerprint: fingerprint.to_owned(),
        })
    }))
}

/// What a keyboard-interactive login needs to know about the account, by id.
pub async fn login_row(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<crate::db::users::LoginRow>, sqlx::Error> {
    sqlx::query_as!(
        crate::db::users::LoginRow,
        r#"SELECT id, password_hash, disabled,
                  COALESCE(locked_until > now(), false) AS "locked!"
         FROM users WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}
