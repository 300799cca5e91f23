//! Single sign-on through an OpenID Connect provider: the operator's settings (read and
//! checked at start), the group mapping, and the authorization code flow (`flow`).

pub mod account;
pub mod flow;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

pub use crate::domain::sso_mapping::Mapping;

/// The path the provider sends the browser back to, under the redirect base URL.
pub const CALLBACK_PATH: &str = "/login/sso/callback";

/// The single sign-on settings. All unset: no single sign-on.
#[derive(Debug, Clone, Args)]
pub struct SsoArgs {
    /// The OpenID Connect provider's issuer URL (its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration`). Setting it turns single sign-on on, and
    /// then the client id, the secret and the redirect base URL are required too.
    #[arg(long, env = "PORTCULLIS_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,

    /// The client id Portcullis is registered with at the provider.
    #[arg(long, env = "PORTCULLIS_OIDC_CLIENT_ID", global = true)]
    pub oidc_client_id: Option<String>,

    /// The client secret. Prefer `PORTCULLIS_OIDC_CLIENT_SECRET_FILE`: a command line is
    /// visible to every user of the machine.
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_CLIENT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub oidc_client_secret: Option<String>,

    /// A file holding the client secret (its first line).
    #[arg(long, env = "PORTCULLIS_OIDC_CLIENT_SECRET_FILE", global = true)]
    pub oidc_client_secret_file: Option<PathBuf>,

    /// The provider's name on the sign-in page ("Sign in with <name>").
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_NAME",
        default_value = "single sign-on",
        global = true
    )]
    pub oidc_name: String,

    /// The address users reach Portcullis at, such as `https://portcullis.corp.example`;
    /// the provider sends them back to `<this>/login/sso/callback`, which must be
    /// registered with it as the redirect URI.
    #[arg(long, env = "PORTCULLIS_OIDC_REDIRECT_BASE", global = true)]
    pub oidc_redirect_base: Option<String>,

    /// Scopes asked for besides `openid`, comma-separated.
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "profile,email",
        global = true
    )]
    pub oidc_scopes: Vec<String>,

    /// Create an account on a person's first sign-in (username from `preferred_username`).
    /// Off: only people already linked to an account (by an earlier sign-in) are let in.
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_CREATE_ACCOUNTS",
        default_value_t = false,
        global = true
    )]
    pub oidc_create_accounts: bool,

    /// The ID token claim that lists the person's groups at the provider.
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_GROUPS_CLAIM",
        default_value = "groups",
        global = true
    )]
    pub oidc_groups_claim: String,

    /// A TOML file mapping the provider's group names to Portcullis groups, and naming the
    /// Portcullis groups whose members are administrators or auditors (see the README).
    #[arg(long, env = "PORTCULLIS_OIDC_GROUP_MAP_FILE", global = true)]
    pub oidc_group_map_file: Option<PathBuf>,

    /// Skip Portcullis's own second factor when the provider says it did multi-factor
    /// authentication (`amr` holds `mfa`, `otp`, `hwk`, `swk`, `sc`, `fpt`, `face`...).
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_TRUST_MFA",
        default_value_t = false,
        global = true
    )]
    pub oidc_trust_mfa: bool,

    /// Allow password sign-in only for these administrators (break-glass accounts),
    /// comma-separated usernames; everyone else signs in with the provider. Unset: password
    /// sign-in for everyone.
    #[arg(
        long,
        env = "PORTCULLIS_PASSWORD_SIGN_IN_ONLY_FOR",
        value_delimiter = ',',
        global = true
    )]
    pub password_sign_in_only_for: Vec<String>,

    /// Sign out also signs out of the provider (OpenID Connect RP-initiated logout), when
    /// the person signed in through it and the provider publishes an `end_session_endpoint`.
    /// Register `<PORTCULLIS_OIDC_REDIRECT_BASE>/login` as the client's post-logout
    /// redirect URI.
    #[arg(
        long,
        env = "PORTCULLIS_OIDC_PROVIDER_LOGOUT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub oidc_provider_logout: bool,
}

/// Single sign-on as configured, checked.
#[derive(Debug, Clone)]
pub struct Sso {
    pub issuer: openidconnect::IssuerUrl,
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub redirect_uri: openidconnect::RedirectUrl,
    /// Where the provider sends the browser after signing out of it (our sign-in page);
    /// `None` when sign out leaves the provider's session alone.
    pub post_logout_uri: Option<openidconnect::PostLogoutRedirectUrl>,
    pub scopes: Vec<String>,
    pub create_accounts: bool,
    pub groups_claim: String,
    pub mapping: Mapping,
    pub trust_mfa: bool,
    /// Usernames that may still sign in with a password; `None`: everyone may.
    pub break_glass: Option<Vec<String>>,
}

impl SsoArgs {
    /// The checked settings, `None` when single sign-on is off. Every mistake names the
    /// setting, so the start stops with a message the operator can act on.
    pub fn load(&self) -> anyhow::Result<Option<Sso>> {
        let Some(issuer) = self.oidc_issuer.as_deref().map(str::trim) else {
            if !self.password_sign_in_only_for.is_empty() {
                bail!(
                    "PORTCULLIS_PASSWORD_SIGN_IN_ONLY_FOR needs single sign-on: set PORTCULLIS_OIDC_ISSUER too"
                );
            }
            return Ok(None);
        };
        let issuer = openidconnect::IssuerUrl::new(issuer.trim_end_matches('/').to_owned())
            .context("PORTCULLIS_OIDC_ISSUER is not a URL")?;
        let client_id = required(&self.oidc_client_id, "PORTCULLIS_OIDC_CLIENT_ID")?;
        let client_secret = self.client_secret()?;
        let base = required(&self.oidc_redirect_base, "PORTCULLIS_OIDC_REDIRECT_BASE")?;
        let redirect_uri = openidconnect::RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            base.trim_end_matches('/')
        ))
        .context("PORTCULLIS_OIDC_REDIRECT_BASE is not a URL")?;
        let post_logout_uri = if self.oidc_provider_logout {
            Some(
                openidconnect::PostLogoutRedirectUrl::new(format!(
                    "{}/login",
                    base.trim_end_matches('/')
                ))
                .context("PORTCULLIS_OIDC_REDIRECT_BASE is not a URL")?,
            )
        } else {
            None
        };
        let mapping = match &self.oidc_group_map_file {
            Some(path) => Mapping::load(path)?,
            None => Mapping::default(),
        };
        let name = self.oidc_name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            bail!("PORTCULLIS_OIDC_NAME must be 1 to 60 characters");
        }
        let break_glass: Vec<String> = self
            .password_sign_in_only_for
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        Ok(Some(Sso {
            issuer,
            client_id,
            client_secret,
            name: name.to_owned(),
            redirect_uri,
            post_logout_uri,
            scopes: self
                .oidc_scopes
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s != "openid")
                .collect(),
            create_accounts: self.oidc_create_accounts,
            groups_claim: self.oidc_groups_claim.trim().to_owned(),
            mapping,
            trust_mfa: self.oidc_trust_mfa,
            break_glass: (!break_glass.is_empty()).then_some(break_glass),
        }))
    }

    fn client_secret(&self) -> anyhow::Result<String> {
        let secret = match (&self.oidc_client_secret, &self.oidc_client_secret_file) {
            (Some(_), Some(_)) => bail!(
                "set PORTCULLIS_OIDC_CLIENT_SECRET or PORTCULLIS_OIDC_CLIENT_SECRET_FILE, not both"
            ),
            (Some(secret), None) => secret.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| {
                    format!(
                        "PORTCULLIS_OIDC_CLIENT_SECRET_FILE: cannot read {}",
                        path.display()
                    )
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            (None, None) => bail!(
                "single sign-on needs the client secret: set PORTCULLIS_OIDC_CLIENT_SECRET_FILE"
            ),
        };
        let secret = secret.trim();
        if secret.is_empty() {
            bail!("the OpenID Connect client secret is empty");
        }
        Ok(secret.to_owned())
    }
}

fn required(value: &Option<String>, name: &str) -> anyhow::Result<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => bail!("single sign-on (PORTCULLIS_OIDC_ISSUER) needs {name} too"),
    }
}

impl Sso {
    /// Whether `username` may sign in with a password.
    pub fn password_allowed(&self, username: &str) -> bool {
        self.break_glass
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n.eq_ignore_ascii_case(username)))
    }

    /// Whether the provider's `amr` values say it did multi-factor authentication (RFC 8176).
    pub fn did_mfa(amr: &[String]) -> bool {
        amr.iter().any(|m| {
            matches!(
                m.as_str(),
                "mfa" | "otp" | "hwk" | "swk" | "sc" | "fpt" | "face" | "iris" | "retina" | "vbm"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// The SSO flags alone, as the command line flattens them.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sso: super::SsoArgs,
    }

    fn load(args: &[&str]) -> Result<bool, String> {
        let mut all = vec!["portcullis"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| e.to_string())?;
        cli.sso
            .load()
            .map(|sso| sso.is_some())
            .map_err(|e| format!("{e:#}"))
    }

    const ISSUER: &[&str] = &["--oidc-issuer", "https://idp.corp.example/realms/corp"];

    #[test]
    fn single_sign_on_is_off_unless_an_issuer_is_set() {
        assert_eq!(load(&[]), Ok(false));
    }

    #[test]
    fn a_missing_setting_is_named_at_start() {
        let err = load(ISSUER).unwrap_err();
        assert!(err.contains("PORTCULLIS_OIDC_CLIENT_ID"), "{err}");
        let mut args = ISSUER.to_vec();
        args.extend(["--oidc-client-id", "portcullis"]);
        let err = load(&args).unwrap_err();
        assert!(err.contains("PORTCULLIS_OIDC_CLIENT_SECRET_FILE"), "{err}");
        args.extend(["--oidc-client-secret", "s3cret"]);
        let err = load(&args).unwrap_err();
        assert!(err.contains("PORTCULLIS_OIDC_REDIRECT_BASE"), "{err}");
        args.extend(["--oidc-redirect-base", "not a url"]);
        let err = load(&args).unwrap_err();
        assert!(
            err.contains("PORTCULLIS_OIDC_REDIRECT_BASE is not a URL"),
            "{err}"
        );
        args.pop();
        args.push("https://portcullis.corp.example/");
        assert_eq!(load(&args), Ok(true));
    }

    #[test]
    fn break_glass_without_single_sign_on_is_refused() {
        let err = load(&["--password-sign-in-only-for", "root"]).unwrap_err();
        assert!(err.contains("needs single sign-on"), "{err}");
    }

    #[test]
    fn an_unreadable_secret_file_or_group_map_is_named() {
        let mut args = ISSUER.to_vec();
        args.extend([
            "--oidc-client-id",
            "portcullis",
            "--oidc-redirect-base",
            "https://portcullis.corp.example",
            "--oidc-client-secret-file",
            "/nonexistent/secret",
        ]);
        let err = load(&args).unwrap_err();
        assert!(err.contains("cannot read /nonexistent/secret"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let map = dir.path().join("map.toml");
        std::fs::write(&map, "[groups]\n\"a\" = \"\"\n").unwrap();
        let secret = secret.to_string_lossy().into_owned();
        let map = map.to_string_lossy().into_owned();
        args.pop();
        args.push(&secret);
        args.extend(["--oidc-group-map-file", &map]);
        let err = load(&args).unwrap_err();
        assert!(
            err.contains("map.toml") && err.contains("empty group name"),
            "{err}"
        );
    }
}
