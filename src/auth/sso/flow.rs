//! The authorization code flow with PKCE through the `openidconnect` crate: discovery, the
//! redirect to the provider with a fresh state, nonce and code challenge, and on the way
//! back the code exchange and the ID token's checks (signature against the provider's keys,
//! issuer, audience, expiry, nonce).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken,
    IdTokenFields, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadataWithLogout, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    reqwest,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::Sso;

/// Claims beyond the standard ones, by name: the configured groups claim is read from here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub other: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type Fields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovered metadata and keys are used before they are read again (a provider
/// that rotates its keys publishes the new one well before it signs with it).
const METADATA_SECONDS: u64 = 300;

/// An ID token signed with a key we do not know makes us read the provider's keys again at
/// once (it rotated them), but not more often than this, so that forged tokens with made-up
/// key ids cannot make us hammer the provider.
const KEY_REFETCH_SECONDS: u64 = 60;

type OidcIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// What discovery found: the client, and the provider's end-session endpoint if it has one.
#[derive(Clone)]
struct Discovered {
    client: OidcClient,
    end_session: Option<EndSessionUrl>,
}

/// The configured provider, with its discovered metadata.
pub struct Provider {
    pub sso: Sso,
    http: reqwest::Client,
    discovered: Mutex<Option<(Instant, Discovered)>>,
    /// When an unknown signing key last made us read the keys again.
    refetched: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.sso.issuer)
            .finish_non_exhaustive()
    }
}

/// A sign-in on its way through the provider, kept in the browser's session until it comes
/// back. The verifier and nonce never leave the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go after signing in (already checked to be a path on this site).
    pub next: String,
    /// Unix seconds when it began.
    pub since: i64,
    /// Set when a signed-in account asked to link its provider sign-in (Account page, after
    /// confirming its password): the way back links this account instead of signing in.
    #[serde(default)]
    pub link: Option<uuid::Uuid>,
}

/// The person the provider vouched for, from a verified ID token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    /// The ID token as the provider sent it, kept with the sign-in as the hint for signing
    /// out of the provider later.
    pub id_token: String,
}

/// Why a sign-in through the provider failed. Each is shown as its own clear page.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The provider could not be reached, or its discovery document is wrong.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The provider refused to exchange the code (used before, expired, for another client).
    #[error("code exchange: {0}")]
    Exchange(String),
    /// The token response held no ID token.
    #[error("no ID token")]
    NoIdToken,
    /// The ID token names another issuer than the configured one.
    #[error("issuer: {0}")]
    Issuer(String),
    /// The ID token was made for another client.
    #[error("audience: {0}")]
    Audience(String),
    /// The ID token has expired.
    #[error("expired: {0}")]
    Expired(String),
    /// The nonce does not match the one this sign-in sent.
    #[error("nonce: {0}")]
    Nonce(String),
    /// The signature does not verify, or anything else about the token is wrong.
    #[error("token: {0}")]
    Token(String),
}

impl Provider {
    /// The provider for `sso`. Nothing is fetched until the first sign-in, so a provider
    /// that is down does not stop Portcullis from starting (password sign-in still works).
    pub fn new(sso: Sso) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider make us fetch any address.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            sso,
            http,
            discovered: Mutex::new(None),
            refetched: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<OidcClient, FlowError> {
        self.discover(false).await.map(|d| d.client)
    }

    /// The provider's metadata and keys read again now, for a token signed with a key we do
    /// not know; None when that was done less than a minute ago.
    async fn refetched_client(&self) -> Result<Option<OidcClient>, FlowError> {
        {
            let mut last = self.refetched.lock().await;
            if last.is_some_and(|at| at.elapsed() < Duration::from_secs(KEY_REFETCH_SECONDS)) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        tracing::info!(issuer = %self.sso.issuer.as_str(), "an ID token is signed with an unknown key: reading the provider's keys again");
        self.discover(true).await.map(|d| Some(d.client))
    }

    async fn discover(&self, force: bool) -> Result<Discovered, FlowError> {
        let mut cached = self.discovered.lock().await;
        if !force
            && let Some((at, discovered)) = cached.as_ref()
            && at.elapsed() < Duration::from_secs(METADATA_SECONDS)
        {
            return Ok(discovered.clone());
        }
        let metadata =
            ProviderMetadataWithLogout::discover_async(self.sso.issuer.clone(), &self.http)
                .await
                .map_err(|e| FlowError::Discovery(format!("{e:#}")))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.sso.client_id.clone()),
            Some(ClientSecret::new(self.sso.client_secret.clone())),
        )
        .set_redirect_uri(self.sso.redirect_uri.clone());
        let discovered = Discovered {
            client,
            end_session,
        };
        *cached = Some((Instant::now(), discovered.clone()));
        Ok(discovered)
    }

    /// Where to send the browser to sign out of the provider too, after a sign-in through it
    /// that gave `id_token`: its end-session endpoint with the token as the hint, our client
    /// id and our sign-in page to come back to. `None` when provider logout is off, the
    /// provider has no such endpoint, cannot be reached, or the token does not parse.
    pub async fn logout_url(&self, id_token: &str) -> Option<String> {
        let back = self.sso.post_logout_uri.clone()?;
        let discovered = match self.discover(false).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sign out of the provider: discovery failed");
                return None;
            }
        };
        let hint: OidcIdToken = id_token.parse().ok()?;
        let request = LogoutRequest::from(discovered.end_session?)
            .set_id_token_hint(&hint)
            .set_client_id(ClientId::new(self.sso.client_id.clone()))
            .set_post_logout_redirect_uri(back);
        Some(request.http_get_url().to_string())
    }

    /// The provider's address to send the browser to, and what to keep until it comes back.
    pub async fn begin(&self, next: String, now: i64) -> Result<(String, Pending), FlowError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.sso.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
            since: now,
            link: None,
        };
        Ok((url.to_string(), pending))
    }

    /// Exchanges the code and verifies the ID token.
    pub async fn finish(&self, code: String, pending: Pending) -> Result<Identity, FlowError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| FlowError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| FlowError::Exchange(exchange_message(&e)))?;
        let id_token = tokens.id_token().ok_or(FlowError::NoIdToken)?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            // Signed with a key we do not know: the provider may have rotated its keys since
            // we read them. Read them again (at most once a minute) and verify once more.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => match self.refetched_client().await? {
                Some(fresh) => id_token.claims(&fresh.id_token_verifier(), &nonce),
                None => Err(
                    openidconnect::ClaimsVerificationError::SignatureVerification(
                        openidconnect::SignatureVerificationError::NoMatchingKey,
                    ),
                ),
            },
            other => other,
        }
        .map_err(verification_error)?;
        let groups = match claims.additional_claims().other.get(&self.sso.groups_claim) {
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(Identity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            email: claims.email().map(|e| e.as_str().to_owned()),
            groups,
            amr: claims
                .auth_method_refs()
                .map(|amr| amr.iter().map(|m| m.as_str().to_owned()).collect())
                .unwrap_or_default(),
            id_token: id_token.to_string(),
        })
    }
}

fn exchange_message<E: std::error::Error>(e: &E) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn verification_error(e: openidconnect::ClaimsVerificationError) -> FlowError {
    use openidconnect::ClaimsVerificationError as E;
    match e {
        E::Expired(m) => FlowError::Expired(m),
        E::InvalidAudience(m) => FlowError::Audience(m),
        E::InvalidIssuer(m) => FlowError::Issuer(m),
        E::InvalidNonce(m) => FlowError::Nonce(m),
        other => FlowError::Token(other.to_string()),
    }
}
