//! Command line and configuration. Every setting is a flag and an environment variable,
//! documented here, in `--help` and in the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Portcullis: just-in-time privileged access. Without a command, runs the web server.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port the web server listens on.
    #[arg(
        long,
        env = "PORTCULLIS_BIND",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub bind: SocketAddr,

    /// PostgreSQL connection URL. When unset, Portcullis runs its own PostgreSQL cluster in
    /// the data directory (from the PostgreSQL server binaries on this machine) and loads the
    /// demo data on its first start.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder for the built-in database and the key file that encrypts generated passwords.
    #[arg(
        long,
        env = "PORTCULLIS_DATA_DIR",
        default_value = "./portcullis-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// File holding the 256-bit key that encrypts generated passwords (64 hex characters).
    /// Created with mode 0600 when missing. Several instances must share one key.
    /// Default: `<data dir>/secret.key`.
    #[arg(long, env = "PORTCULLIS_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// Jump host shown in SSH command lines on the Connect page (`ssh -J JUMP ...`), for
    /// resources reachable only through a bastion. Example: `bastion.corp.example:22`.
    #[arg(long, env = "PORTCULLIS_SSH_JUMP_HOST", global = true)]
    pub ssh_jump_host: Option<String>,

    /// Gateway (proxy) that clients log in through with a session's connection string, shown
    /// under "Log in through a client". Example: `gateway.corp.example`. Unset: the section
    /// shows the connection string only.
    #[arg(long, env = "PORTCULLIS_GATEWAY_HOST", global = true)]
    pub gateway_host: Option<String>,

    /// Address and port of the SSH gateway (`ssh -p 2222 <connection string>@host`), or `off`.
    /// Default: `127.0.0.1:2222` with the built-in database, off otherwise.
    #[arg(long, env = "PORTCULLIS_SSH_GATEWAY_BIND", global = true, value_parser = parse_gateway_bind)]
    pub ssh_gateway_bind: Option<GatewayBind>,

    /// Ciphers the SSH gateway offers its users, comma-separated OpenSSH names
    /// (`aes128-gcm@openssh.com`, `aes256-gcm@openssh.com`, `chacha20-poly1305@openssh.com`,
    /// `aes128-ctr`, `aes192-ctr`, `aes256-ctr`). Default: AES-GCM alone on a processor with
    /// AES instructions (the gateway encrypts every byte once more than a direct connection,
    /// and AES-GCM costs it and the user's client a fraction of ChaCha20-Poly1305, which
    /// OpenSSH clients would otherwise choose); elsewhere ChaCha20-Poly1305 first.
    #[arg(
        long,
        env = "PORTCULLIS_SSH_GATEWAY_CIPHERS",
        value_delimiter = ',',
        global = true,
        value_parser = parse_gateway_cipher
    )]
    pub ssh_gateway_ciphers: Vec<String>,

    /// Addresses of the reverse proxies in front of Portcullis, comma-separated. A request
    /// from one of them is taken to come from the address its X-Forwarded-For names (the
    /// right-most one that is not itself a listed proxy): that address is recorded in session
    /// events and counted by the sign-in rate limit. Unset: the connection's peer address,
    /// and X-Forwarded-For is ignored (anyone could write it).
    #[arg(
        long,
        env = "PORTCULLIS_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Mark the session cookie `Secure` (sent over HTTPS only). Default: on, unless the
    /// server is bound to a loopback address (local development over plain HTTP).
    #[arg(long, env = "PORTCULLIS_COOKIE_SECURE", global = true)]
    pub cookie_secure: Option<bool>,

    /// Minutes without a request after which a sign-in ends. Activity is recorded every
    /// quarter of this (at most every minute), so an idle sign-in ends up to that much later.
    #[arg(long, env = "PORTCULLIS_SESSION_IDLE_MINUTES", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1440), global = true)]
    pub session_idle_minutes: u32,

    /// Hours after signing in when a sign-in ends, however active.
    #[arg(long, env = "PORTCULLIS_SESSION_LIFETIME_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=168), global = true)]
    pub session_lifetime_hours: u32,

    /// Seconds a loaded browser session may answer later page views from memory (0: read
    /// it from the database on every request). Changes are announced to every instance, so
    /// this only bounds how long a lost announcement could go unnoticed.
    #[arg(long, env = "PORTCULLIS_SESSION_CACHE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=300), global = true)]
    pub session_cache_seconds: u32,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "PORTCULLIS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// IANA time zone given to new users (for example Europe/Berlin).
    #[arg(long, env = "PORTCULLIS_DEFAULT_TIME_ZONE", default_value = "UTC",
          value_parser = parse_time_zone, global = true)]
    pub default_time_zone: String,

    /// Largest number of database connections this instance holds. Small is fast: a pool
    /// much larger than the cores PostgreSQL has only adds contention.
    #[arg(long, env = "PORTCULLIS_DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=500), global = true)]
    pub db_max_connections: u32,

    /// Seconds a request waits for a free database connection (or a new one) before it is
    /// answered 503 "Temporarily unavailable".
    #[arg(long, env = "PORTCULLIS_DB_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=60), global = true)]
    pub db_acquire_timeout_seconds: u32,

    /// Seconds one SQL statement of the web server may run before PostgreSQL cancels it
    /// (migrations and command-line tools have no limit). A request still waiting on the
    /// database one second after this (a frozen or unreachable server cancels nothing) is
    /// answered 503.
    #[arg(long, env = "PORTCULLIS_DB_STATEMENT_TIMEOUT_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600), global = true)]
    pub db_statement_timeout_seconds: u32,

    /// Who must sign in with a second factor (an authenticator app's code):
    /// `everyone`, `privileged` (administrators and approvers) or `optional` (whoever turns
    /// it on). Default: `everyone`, except on the built-in demo database (no DATABASE_URL),
    /// where it is `optional` so the demo logins work with a password alone.
    #[arg(long, env = "PORTCULLIS_SECOND_FACTOR", value_enum, global = true)]
    pub second_factor: Option<SecondFactorPolicy>,

    /// Sign-in attempts (password and code forms) allowed from one client address (an
    /// IPv6 /64) per window; more are answered 429 until the window ends. Behind a reverse
    /// proxy every client shares the proxy's address: raise this accordingly.
    #[arg(long, env = "PORTCULLIS_SIGN_IN_LIMIT", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    pub sign_in_limit: u32,

    /// Length of the sign-in rate limit's window, in minutes.
    #[arg(long, env = "PORTCULLIS_SIGN_IN_WINDOW_MINUTES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1440), global = true)]
    pub sign_in_window_minutes: u32,
    /// Live status streams (`/events`) one instance serves at once; more are answered 503
    /// and those pages fall back to Refresh. Each user may also have at most 8 open.
    #[arg(long, env = "PORTCULLIS_MAX_EVENT_STREAMS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000), global = true)]
    pub max_event_streams: u32,
    /// Browser terminals (the Connection icon's WebSocket to an SSH target) one instance
    /// serves at once; more are refused with a message. Each user may also have at most 4
    /// open. SSH gateway connections are not counted.
    #[arg(long, env = "PORTCULLIS_MAX_BROWSER_TERMINALS", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=100_000), global = true)]
    pub max_browser_terminals: u32,
    /// Bearer token that `/metrics` requires on the main address (at least 16 characters).
    /// Unset: `/metrics` does not exist there.
    #[arg(long, env = "PORTCULLIS_METRICS_TOKEN", global = true, hide_env_values = true,
          value_parser = parse_metrics_token)]
    pub metrics_token: Option<String>,

    /// A separate address serving only `/metrics`, for a monitoring system that reaches it
    /// over a private network (no token needed there unless `PORTCULLIS_METRICS_TOKEN` is set).
    /// Example: `10.0.0.5:9300`.
    #[arg(long, env = "PORTCULLIS_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,

    /// Seconds a client has to send a request's headers, from its first byte (or from
    /// connecting, for a connection's first request); slower, the connection is closed.
    #[arg(long, env = "PORTCULLIS_HEADER_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=300), global = true)]
    pub header_timeout_seconds: u32,

    /// Seconds a client has to send a request's whole body, from its headers; slower, the
    /// request is answered 408 and its connection closed.
    #[arg(long, env = "PORTCULLIS_BODY_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3600), global = true)]
    pub body_timeout_seconds: u32,

    /// Seconds a kept-alive connection may wait for its next request with nothing read or
    /// written before it is closed. At least 16: open event streams send a keep-alive every
    /// 15 seconds.
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(16..=3600), global = true)]
    pub idle_timeout_seconds: u32,

    /// Largest number of client connections open at once; past it new connections wait
    /// (in the listen backlog) until one closes, and a warning is logged. Keep it below the
    /// process's open-file limit (`LimitNOFILE` in the systemd unit), which also covers
    /// database connections and files.
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    pub max_connections: u32,

    /// A TOML file declaring the executables that `command` provisioners may run, read at
    /// start (a mistake stops the start, naming the line). Resources only name an entry;
    /// nothing from the web can add one. Unset: no command provisioners.
    #[arg(long, env = "PORTCULLIS_PROVISIONERS_FILE", global = true)]
    pub provisioners_file: Option<std::path::PathBuf>,

    /// Days a recording of a connection through the gateway or the browser terminal is
    /// kept after it ended; the worker deletes older ones.
    #[arg(long, env = "PORTCULLIS_RECORDING_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36500), global = true)]
    pub recording_retention_days: u32,

    #[command(flatten)]
    pub smtp: crate::notify::SmtpConfig,

    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,

    #[command(flatten)]
    pub sso: crate::auth::sso::SsoArgs,
}

fn parse_time_zone(value: &str) -> Result<String, String> {
    crate::domain::tz::TimeZone::parse(value)
        .map(|tz| tz.name().to_owned())
        .map_err(|e| e.to_string())
}

/// Where the SSH gateway listens, or that it is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayBind {
    Off,
    On(SocketAddr),
}

fn parse_gateway_bind(value: &str) -> Result<GatewayBind, String> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(GatewayBind::Off);
    }
    value
        .trim()
        .parse()
        .map(GatewayBind::On)
        .map_err(|_| "expected an address and port such as 127.0.0.1:2222, or off".into())
}

/// The ciphers `PORTCULLIS_SSH_GATEWAY_CIPHERS` may name (`gateway::ciphers` maps them).
pub const GATEWAY_CIPHERS: [&str; 6] = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
];

fn parse_gateway_cipher(value: &str) -> Result<String, String> {
    let value = value.trim();
    if GATEWAY_CIPHERS.contains(&value) {
        return Ok(value.to_owned());
    }
    Err(format!(
        "unknown cipher {value:?}; expected some of {}",
        GATEWAY_CIPHERS.join(", ")
    ))
}

fn parse_metrics_token(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() < 16 {
        return Err("the metrics token must be at least 16 characters".into());
    }
    if value.chars().any(|c| !c.is_ascii_graphic()) {
        return Err("the metrics token may hold only visible ASCII characters".into());
    }
    Ok(value.to_owned())
}

impl Config {
    /// The key file's path.
    pub fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// Where the SSH gateway listens, if it is on.
    pub fn ssh_gateway_bind(&self) -> Option<SocketAddr> {
        match self.ssh_gateway_bind {
            Some(GatewayBind::On(address)) => Some(address),
            Some(GatewayBind::Off) => None,
            None if self.database_url.is_none() => Some(SocketAddr::from(([127, 0, 0, 1], 2222))),
            None => None,
        }
    }

    /// How long a request waits for a database connection.
    pub fn db_acquire_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.db_acquire_timeout_seconds))
    }

    /// How long PostgreSQL lets one statement of the web server run.
    pub fn db_statement_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.db_statement_timeout_seconds))
    }

    /// How long a request may wait on the database in all before it is answered 503: the
    /// statement timeout, plus a second for PostgreSQL's own cancellation to arrive first.
    pub fn db_request_deadline(&self) -> std::time::Duration {
        self.db_statement_timeout() + std::time::Duration::from_secs(1)
    }

    /// Whether the session cookie carries `Secure`.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or_else(|| !self.bind.ip().is_loopback())
    }
}

pub use crate::auth::second_factor::SecondFactorPolicy;

impl Config {
    /// The second-factor policy in force: as configured, else `optional` on the built-in
    /// demo database and `everyone` on any other.
    pub fn second_factor(&self) -> SecondFactorPolicy {
        self.second_factor
            .unwrap_or(if self.database_url.is_none() {
                SecondFactorPolicy::Optional
            } else {
                SecondFactorPolicy::Everyone
            })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Load seed files.
    #[command(subcommand)]
    Seed(SeedCommand),
    /// Import catalogue data from files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage API tokens (for service accounts).
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `portcullis token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it once (only its hash is stored).
    Create {
        /// The owner's username; the token carries their permissions and no more.
        #[arg(long)]
        user: String,
        /// What the token is for, as its owner's Account page lists it.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: read, request, approve, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Days until it expires (1 to 365).
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

/// `portcullis import ...`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Create or update resources from a CSV file with the columns name, kind, platform,
    /// address, port, description (matched by name, whatever the letter case). All lines are
    /// applied, or none: a refused line prints `file:line: name: reason` and changes nothing.
    Resources {
        /// The CSV file (UTF-8, header line first).
        file: PathBuf,
        /// Only check the file and print what would be created, updated or refused.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `portcullis user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user account. Prompts for the password unless --password-stdin is given.
    Create(UserCreate),
    /// Lift a lockout after repeated failed sign-ins.
    Unlock {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Disable an account: it can no longer sign in, and its open sign-ins end on their next
    /// request.
    Disable {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Set a new password (and lift any lockout). Prompts unless --password-stdin is given.
    ResetPassword {
        /// The account's username.
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `portcullis user create`
#[derive(Debug, Args)]
pub struct UserCreate {
    /// Sign-in name: letters, digits, '.', '_' and '-', up to 64; unique regardless of case.
    #[arg(long)]
    pub username: String,
    /// Account role.
    #[arg(long, value_enum, default_value_t = RoleArg::User)]
    pub role: RoleArg,
    /// Name shown in the interface (default: the username).
    #[arg(long)]
    pub display_name: Option<String>,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Roles that can be given from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    User,
    Admin,
    Auditor,
}

/// `portcullis seed ...`
#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// Validate a TOML seed file and apply it in one transaction: users, groups, resources,
    /// activities, connection profiles and access policies, upserted by name.
    Apply {
        /// The seed file.
        file: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn webhook_settings_are_checked_with_the_reason() {
        let zero = Cli::try_parse_from(["portcullis", "--webhook-max-attempts", "0"]);
        let message = zero.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("--webhook-max-attempts"), "{message}");
        assert!(message.contains("1..=30"), "{message}");
        let slow = Cli::try_parse_from(["portcullis", "--webhook-timeout-seconds", "600"]);
        let message = slow.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("1..=120"), "{message}");
        let cli = Cli::try_parse_from(["portcullis", "--webhook-retention-days", "7"]).unwrap();
        let config = cli.config;
        assert_eq!(
            (
                config.webhooks.webhook_retention_days,
                config.webhooks.webhook_max_attempts,
                config.webhooks.webhook_first_backoff_seconds,
            ),
            (7, crate::webhooks::MAX_ATTEMPTS, 10)
        );
    }

    #[test]
    fn gateway_ciphers_are_read_in_order_and_an_unknown_one_is_named() {
        let cli = Cli::try_parse_from([
            "portcullis",
            "--ssh-gateway-ciphers",
            "chacha20-poly1305@openssh.com, aes256-ctr",
        ])
        .unwrap();
        assert_eq!(
            cli.config.ssh_gateway_ciphers,
            ["chacha20-poly1305@openssh.com", "aes256-ctr"]
        );
        let weak = Cli::try_parse_from([
            "portcullis",
            "--ssh-gateway-ciphers",
            "aes128-gcm@openssh.com,3des-cbc",
        ]);
        let message = weak.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("unknown cipher \"3des-cbc\""), "{message}");
        assert!(
            message.contains("aes128-gcm@openssh.com, aes256-gcm@openssh.com"),
            "{message}"
        );
    }

    #[test]
    fn a_short_or_unprintable_metrics_token_is_refused_with_the_reason() {
        let short = Cli::try_parse_from(["portcullis", "--metrics-token", "too-short"]);
        let message = short.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("at least 16 characters"), "{message}");
        let spaced = Cli::try_parse_from(["portcullis", "--metrics-token", "has a space in it ok"]);
        let message = spaced.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("visible ASCII"), "{message}");
        let good =
            Cli::try_parse_from(["portcullis", "--metrics-token", "0123456789abcdef"]).unwrap();
        assert_eq!(
            good.config.metrics_token.as_deref(),
            Some("0123456789abcdef")
        );
    }
}
