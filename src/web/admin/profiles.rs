//! Admin > Connection profiles: the list, the profile form with up to three ordered approval
//! tiers, delete (refused while a policy uses the profile).

use super::crud::{Catalogue, Deletable};
use super::picker::{self, Picker};
use super::{actor, finish_save, invalid, taken};
use crate::db;
use crate::db::audit::{Actor, WriteError};
use crate::db::look_alike::Named;
use crate::db::profiles::{ProfileInput, Row, Tier};
use crate::db::resources::Removal;
use crate::domain::admin_input::{self, FieldErrors, capitalise};
use crate::domain::catalog::compile_ticket_pattern;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Fields, first};
use crate::web::guard::CurrentUser;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgConnection;
use tower_sessions::Session;
use uuid::Uuid;

/// How many approval tiers a profile may have.
pub const TIERS: usize = 3;

/// The profile form as posted. The three approval tiers have fields of their own
/// (`tier1_users`, `tier1_groups`, `tier1_required` and the lists' search boxes).
#[derive(Debug, Default, Deserialize)]
pub struct ProfileForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default, deserialize_with = "first")]
    description: String,
    #[serde(default, deserialize_with = "first")]
    max_duration_minutes: String,
    #[serde(default, deserialize_with = "first")]
    schedule_horizon_days: String,
    #[serde(default, deserialize_with = "first")]
    decision_timeout_minutes: String,
    #[serde(default, deserialize_with = "first")]
    extension_minutes: String,
    #[serde(default, deserialize_with = "first")]
    max_extensions: String,
    #[serde(default, deserialize_with = "first")]
    ticket_pattern: String,
    #[serde(default, deserialize_with = "first")]
    ticket_validator_url: String,
    #[serde(default, deserialize_with = "first")]
    ticket_validator_timeout_seconds: String,
    #[serde(default, deserialize_with = "first")]
    ticket_validator_on_failure: String,
    #[serde(default, deserialize_with = "first")]
    notes_required: String,
    #[serde(default, deserialize_with = "first")]
    ticket_required: String,
    #[serde(default, deserialize_with = "first")]
    allow_self_approval: String,
    #[serde(default, deserialize_with = "first")]
    extension_allowed: String,
    #[serde(default, deserialize_with = "first")]
    record_input: String,
    #[serde(default)]
    tier1_users: Vec<String>,
    #[serde(default)]
    tier1_groups: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    tier1_required: String,
    #[serde(default, deserialize_with = "first")]
    tier1_users_q: String,
    #[serde(default, deserialize_with = "first")]
    tier1_groups_q: String,
    #[serde(default)]
    tier2_users: Vec<String>,
    #[serde(default)]
    tier2_groups: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    tier2_required: String,
    #[serde(default, deserialize_with = "first")]
    tier2_users_q: String,
    #[serde(default, deserialize_with = "first")]
    tier2_groups_q: String,
    #[serde(default)]
    tier3_users: Vec<String>,
    #[serde(default)]
    tier3_groups: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    tier3_required: String,
    #[serde(default, deserialize_with = "first")]
    tier3_users_q: String,
    #[serde(default, deserialize_with = "first")]
    tier3_groups_q: String,
    /// `search` from a list's Search button, else Save.
    #[serde(default, deserialize_with = "first")]
    go: String,
    /// "Save anyway" on a look-alike name.
    #[serde(default, deserialize_with = "first")]
    look_alike_ok: String,
}

/// One tier's fields of a [`ProfileForm`].
struct TierFields<'a> {
    users: &'a [String],
    groups: &'a [String],
    required: &'a str,
    users_q: &'a str,
    groups_q: &'a str,
}

impl ProfileForm {
    /// Tier `n` (1 to [`TIERS`]).
    fn tier(&self, n: usize) -> TierFields<'_> {
        let (users, groups, required, users_q, groups_q) = match n {
            1 => (
                &self.tier1_users,
                &self.tier1_groups,
                &self.tier1_required,
                &self.tier1_users_q,
                &self.tier1_groups_q,
            ),
            2 => (
                &self.tier2_users,
                &self.tier2_groups,
                &self.tier2_required,
                &self.tier2_users_q,
                &self.tier2_groups_q,
            ),
            _ => (
                &self.tier3_users,
                &self.tier3_groups,
                &self.tier3_required,
                &self.tier3_users_q,
                &self.tier3_groups_q,
            ),
        };
        TierFields {
            users,
            groups,
            required,
            users_q,
            groups_q,
        }
    }

    /// The form as the page shows it again (with its errors, or after a list's Search).
    fn echo(&self) -> Fields {
        let mut f = Fields::default();
        for (k, v) in [
            ("name", &self.name),
            ("description", &self.description),
            ("max_duration_minutes", &self.max_duration_minutes),
            ("schedule_horizon_days", &self.schedule_horizon_days),
            ("decision_timeout_minutes", &self.decision_timeout_minutes),
            ("extension_minutes", &self.extension_minutes),
            ("max_extensions", &self.max_extensions),
            ("ticket_pattern", &self.ticket_pattern),
            ("ticket_validator_url", &self.ticket_validator_url),
            (
                "ticket_validator_timeout_seconds",
                &self.ticket_validator_timeout_seconds,
            ),
            (
                "ticket_validator_on_failure",
                &self.ticket_validator_on_failure,
            ),
            ("notes_required", &self.notes_required),
            ("ticket_required", &self.ticket_required),
            ("allow_self_approval", &self.allow_self_approval),
            ("extension_allowed", &self.extension_allowed),
            ("record_input", &self.record_input),
            ("look_alike_ok", &self.look_alike_ok),
        ] {
            if !v.is_empty() {
                f.0.push((k.into(), v.clone()));
            }
        }
        for n in 1..=TIERS {
            let t = self.tier(n);
            f.0.push((field(n, "required"), t.required.to_owned()));
            f.0.push((field(n, "users_q"), t.users_q.to_owned()));
            f.0.push((field(n, "groups_q"), t.groups_q.to_owned()));
            f.0.extend(t.users.iter().map(|u| (field(n, "users"), u.clone())));
            f.0.extend(t.groups.iter().map(|g| (field(n, "groups"), g.clone())));
        }
        f
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/profiles.html")]
pub struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    search: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    Query(query): Query<ListQuery>,
) -> AppResult<ListPage> {
    let search: String = query.q.trim().chars().take(100).collect();
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows: db::profiles::list(&state.db, &search).await?,
        search,
    })
}

/// One tier's fieldset.
pub struct TierView {
    pub n: usize,
    pub required: String,
    pub users: Picker,
    pub groups: Picker,
}

impl TierView {
    /// The first tier, and any other with approvers (or a search, or an error), is shown
    /// open; the others are folded.
    pub fn open(&self) -> bool {
        self.n == 1 || self.users.in_use() || self.groups.in_use()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/profile_form.html")]
pub struct FormPage {
    chrome: Chrome,
    id: Option<Uuid>,
    f: Fields,
    tiers: Vec<TierView>,
    /// Stored tiers that can no longer be satisfied.
    warnings: Vec<String>,
    errors: FieldErrors,
}

impl FormPage {
    fn text(&self, name: &str) -> String {
        self.f.text(name).to_owned()
    }

    fn on(&self, name: &str) -> bool {
        admin_input::checkbox(self.f.first(name))
    }

    fn on_failure_choices(&self) -> [crate::ticket_validation::OnFailure; 2] {
        crate::ticket_validation::OnFailure::ALL
    }
}

fn field(n: usize, what: &str) -> String {
    format!("tier{n}_{what}")
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    f: &Fields,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let mut tiers = Vec::new();
    for n in 1..=TIERS {
        let users_name = field(n, "users");
        let groups_name = field(n, "groups");
        let ticked_users = admin_input::ids(f.all(&users_name));
        let ticked_groups = admin_input::ids(f.all(&groups_name));
        let users_search = picker::search(f, &users_name);
        let groups_search = picker::search(f, &groups_name);
        let users =
            db::users::choices(&state.db, &users_search, &ticked_users, picker::SHOWN).await?;
        let groups =
            db::groups::choices(&state.db, &groups_search, &ticked_groups, picker::SHOWN).await?;
        tiers.push(TierView {
            n,
            required: f.text(&field(n, "required")).to_owned(),
            users: Picker::new(
                &users_name,
                &format!("Tier {n} approvers: users"),
                &users_search,
                users,
                &ticked_users,
            )
            .with_error(errors.get(&users_name)),
            groups: Picker::new(
                &groups_name,
                &format!("Tier {n} approvers: groups"),
                &groups_search,
                groups,
                &ticked_groups,
            )
            .with_error(errors.get(&groups_name)),
        });
    }
    let warnings = match id {
        Some(id) => db::profiles::shortfalls(&state.db, id)
            .await?
            .into_iter()
            .map(|(position, required, eligible)| {
                format!(
                    "Tier {position} requires {required} approval(s) but only {eligible} enabled user(s) can approve in it now: requests under this profile cannot be approved until you add approvers or lower the number."
                )
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(FormPage {
        chrome: chrome.at("admin"),
        id,
        f: f.clone(),
        tiers,
        warnings,
        errors,
    })
}

fn defaults() -> Fields {
    let mut f = Fields::default();
    for (k, v) in [
        ("max_duration_minutes", "60"),
        ("schedule_horizon_days", "30"),
        ("decision_timeout_minutes", "1440"),
        ("extension_minutes", "30"),
        ("max_extensions", "0"),
        ("tier1_required", "1"),
        ("tier2_required", "1"),
        ("tier3_required", "1"),
        ("ticket_validator_timeout_seconds", "5"),
        ("ticket_validator_on_failure", "block"),
    ] {
        f.0.push((k.into(), v.into()));
    }
    f
}

pub async fn new(State(state): State<AppState>, chrome: Chrome) -> AppResult<FormPage> {
    page(&state, chrome, None, &defaults(), FieldErrors::default()).await
}

/// Checks the form on its own; the tiers' approvers are checked against the database by
/// [`check_tiers`], in the transaction that saves. Returns the input (with placeholders
/// where a field is wrong) and the problems found.
fn parse(f: &ProfileForm) -> (ProfileInput, FieldErrors) {
    let mut e = FieldErrors::default();
    let name = admin_input::text(&mut e, "name", "Name", &f.name, 100);
    let description =
        admin_input::optional_text(&mut e, "description", "Description", &f.description, 1000);
    let int = admin_input::int;
    let max_duration_minutes = int(
        &mut e,
        "max_duration_minutes",
        "Maximum duration (minutes)",
        &f.max_duration_minutes,
        5,
        10080,
    );
    let schedule_horizon_days = int(
        &mut e,
        "schedule_horizon_days",
        "Scheduling horizon (days)",
        &f.schedule_horizon_days,
        0,
        365,
    );
    let decision_timeout_minutes = int(
        &mut e,
        "decision_timeout_minutes",
        "Decision timeout (minutes)",
        &f.decision_timeout_minutes,
        1,
        43200,
    );
    let extension_minutes = int(
        &mut e,
        "extension_minutes",
        "Minutes per extension",
        &f.extension_minutes,
        1,
        1440,
    );
    let max_extensions = int(
        &mut e,
        "max_extensions",
        "Maximum extensions",
        &f.max_extensions,
        0,
        100,
    );
    let pattern = f.ticket_pattern.trim();
    let ticket_pattern = if pattern.is_empty() {
        None
    } else {
        if let Err(message) = compile_ticket_pattern(pattern) {
            e.add("ticket_pattern", capitalise(&message));
        }
        Some(pattern.to_owned())
    };
    let on = |v: &String| admin_input::checkbox(Some(v));
    let validator = f.ticket_validator_url.trim();
    let ticket_validator_url = if validator.is_empty() {
        None
    } else {
        match crate::webhooks::check_url(validator) {
            Ok(url) => Some(url),
            Err(message) => {
                e.add("ticket_validator_url", message);
                None
            }
        }
    };
    // Both have defaults (5 s, block) when the form leaves them out.
    let ticket_validator_timeout_seconds = if f.ticket_validator_timeout_seconds.trim().is_empty() {
        5
    } else {
        int(
            &mut e,
            "ticket_validator_timeout_seconds",
            "Validator timeout (seconds)",
            &f.ticket_validator_timeout_seconds,
            1,
            30,
        )
    };
    let on_failure = f.ticket_validator_on_failure.as_str();
    let ticket_validator_on_failure =
        match crate::ticket_validation::OnFailure::parse(if on_failure.is_empty() {
            "block"
        } else {
            on_failure
        }) {
            Some(o) => o.key().to_owned(),
            None => {
                e.add(
                    "ticket_validator_on_failure",
                    "Choose what happens when the ticket is not confirmed open: block or warn.",
                );
                "block".to_owned()
            }
        };

    // Tiers are taken in order up to the first empty one, so tier n is `tiers[n - 1]`.
    let mut tiers = Vec::new();
    let mut ended: Option<usize> = None;
    for n in 1..=TIERS {
        let t = f.tier(n);
        let users = admin_input::ids(t.users.iter().map(String::as_str));
        let groups = admin_input::ids(t.groups.iter().map(String::as_str));
        if users.is_empty() && groups.is_empty() {
            ended.get_or_insert(n);
            continue;
        }
        if let Some(empty) = ended {
            e.add(
                &field(n, "required"),
                format!(
                    "Tier {empty} has no approvers, so tier {n} cannot follow it: fill the tiers in order."
                ),
            );
            continue;
        }
        let required_field = field(n, "required");
        let approvals_required = admin_input::int(
            &mut e,
            &required_field,
            &format!("Tier {n} approvals required"),
            t.required,
            1,
            100,
        );
        tiers.push(Tier {
            approvals_required,
            users,
            groups,
        });
    }

    let input = ProfileInput {
        name,
        description,
        max_duration_minutes,
        notes_required: on(&f.notes_required),
        ticket_required: on(&f.ticket_required),
        ticket_pattern,
        schedule_horizon_days,
        allow_self_approval: on(&f.allow_self_approval),
        decision_timeout_minutes,
        extension_allowed: on(&f.extension_allowed),
        extension_minutes,
        max_extensions,
        record_input: on(&f.record_input),
        tiers,
        ticket_validator_url,
        ticket_validator_timeout_seconds,
        ticket_validator_on_failure,
    };
    (input, e)
}

/// Checks the tiers' approvers in `tx` (which then holds the locks that keep the answer true
/// until it commits) and adds any problem to `e` at its field.
async fn check_tiers(
    tx: &mut sqlx::PgConnection,
    tiers: &[Tier],
    e: &mut FieldErrors,
) -> AppResult<()> {
    let checks = db::profiles::check_tiers(tx, tiers).await?;
    for (i, (tier, check)) in tiers.iter().zip(checks).enumerate() {
        let n = i + 1;
        if check.users_gone {
            e.add(
                &field(n, "users"),
                "Some of the ticked users no longer exist. Check the list again.",
            );
        }
        if check.groups_gone {
            e.add(
                &field(n, "groups"),
                "Some of the ticked groups no longer exist. Check the list again.",
            );
        }
        let required_field = field(n, "required");
        let required = tier.approvals_required;
        if !check.users_gone
            && !check.groups_gone
            && e.get(&required_field).is_none()
            && check.eligible < i64::from(required)
        {
            e.add(
                &required_field,
                format!(
                    "Tier {n} requires {required} approval(s) but only {} enabled user(s) can approve in it (its users and the members of its groups).",
                    check.eligible
                ),
            );
        }
    }
    Ok(())
}

/// Profiles as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Profiles;

impl Catalogue for Profiles {
    type Form = ProfileForm;
    const WHAT: &'static str = "connection profile";
    const LIST: &'static str = "/admin/profiles";
    const NEW: &'static str = "/admin/profiles/new";
    const ONE: &'static str = "/admin/profiles/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        let Some(p) = db::profiles::get(&state.db, id).await? else {
            return Ok(None);
        };
        let mut conn = state.db.acquire().await?;
        let tiers = db::profiles::tiers(&mut conn, id).await?;
        drop(conn);
        let mut f = Fields::default();
        let mut put = |k: &str, v: String| f.0.push((k.to_owned(), v));
        put("name", p.name);
        put("description", p.description);
        put("max_duration_minutes", p.max_duration_minutes.to_string());
        put("schedule_horizon_days", p.schedule_horizon_days.to_string());
        put(
            "decision_timeout_minutes",
            p.decision_timeout_minutes.to_string(),
        );
        put("extension_minutes", p.extension_minutes.to_string());
        put("max_extensions", p.max_extensions.to_string());
        put("ticket_pattern", p.ticket_pattern.unwrap_or_default());
        put(
            "ticket_validator_url",
            p.ticket_validator_url.unwrap_or_default(),
        );
        put(
            "ticket_validator_timeout_seconds",
            p.ticket_validator_timeout_seconds.to_string(),
        );
        put("ticket_validator_on_failure", p.ticket_validator_on_failure);
        for (k, on) in [
            ("notes_required", p.notes_required),
            ("ticket_required", p.ticket_required),
            ("allow_self_approval", p.allow_self_approval),
            ("extension_allowed", p.extension_allowed),
            ("record_input", p.record_input),
        ] {
            if on {
                put(k, "on".into());
            }
        }
        for n in 1..=TIERS {
            match tiers.get(n - 1) {
                Some(t) => {
                    put(&field(n, "required"), t.approvals_required.to_string());
                    for u in &t.users {
                        put(&field(n, "users"), u.to_string());
                    }
                    for g in &t.groups {
                        put(&field(n, "groups"), g.to_string());
                    }
                }
                None => put(&field(n, "required"), "1".into()),
            }
        }
        Ok(Some(
            page(state, chrome, Some(id), &f, FieldErrors::default())
                .await?
                .into_response(),
        ))
    }

    async fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        form: &ProfileForm,
    ) -> AppResult<Response> {
        let f = &form.echo();
        if form.go == "search" {
            return Ok(page(state, chrome, id, f, FieldErrors::default())
                .await?
                .into_response());
        }
        let (input, mut errors) = parse(form);
        if errors.is_empty()
            && let Some(warning) = super::look_alike::warning(
                &state.db,
                Named::Profiles,
                &input.name,
                id,
                !form.look_alike_ok.is_empty(),
            )
            .await?
        {
            errors = warning;
        }
        let mut tx = state.db.begin().await?;
        check_tiers(&mut tx, &input.tiers, &mut errors).await?;
        if !errors.is_empty() {
            tx.rollback().await?;
            return Ok(invalid(page(state, chrome, id, f, errors).await?));
        }
        let result = match id {
            None => db::profiles::create(&mut tx, &actor(user), &input).await,
            Some(id) => db::profiles::update(&mut tx, &actor(user), id, &input)
                .await
                .map(|()| id),
        };
        let result = result.map(|saved| format!("/admin/profiles/{saved}"));
        match finish_save(
            tx,
            session,
            result,
            id.is_some(),
            &input.name,
            "connection profile",
            "/admin/profiles",
        )
        .await?
        {
            Some(response) => Ok(response),
            None => {
                let mut errors = FieldErrors::default();
                errors.add("name", taken("connection profile", &input.name));
                Ok(invalid(page(state, chrome, id, f, errors).await?))
            }
        }
    }
}

impl Deletable for Profiles {
    const DELETE: &'static str = "/admin/profiles/{id}/delete";

    async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
        db::profiles::remove(tx, actor, id).await
    }
}
