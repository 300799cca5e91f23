//! The administrators' command line: everything but `serve`.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, bail};

use crate::auth::password;
use crate::config::{
    Config, ImportCommand, RoleArg, SeedCommand, TokenCommand, UserCommand, UserCreate,
};
use crate::db;
use crate::domain::api_token::{self, NewToken, Secret};
use crate::domain::names::{DisplayName, NewPassword, Username};
use crate::domain::role::Role;
use crate::pg_cluster::Database;

/// `portcullis migrate`
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    println!("Migrations are up to date.");
    database.close().await;
    Ok(())
}

/// `portcullis user ...`
pub async fn user(config: &Config, command: &UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => create_user(config, args).await,
        UserCommand::Unlock { username } => {
            let database = Database::open(config).await?;
            let result =
                db::users::unlock(&database.pool, db::users::Who::Username(username)).await;
            database.close().await;
            match result? {
                Some(name) => {
                    println!("Unlocked {name}.");
                    Ok(())
                }
                None => bail!("no user named \"{username}\""),
            }
        }
        UserCommand::Disable { username } => set_disabled(config, username, true).await,
        UserCommand::Enable { username } => set_disabled(config, username, false).await,
        UserCommand::ResetPassword {
            username,
            password_stdin,
        } => reset_password(config, username, *password_stdin).await,
    }
}

async fn set_disabled(config: &Config, username: &str, disabled: bool) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    let result = async {
        let mut tx = database.pool.begin().await?;
        let name = db::users::set_disabled(
            &mut tx,
            &db::audit::Actor::command_line(),
            db::users::Who::Username(username),
            disabled,
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(name)
    }
    .await;
    database.close().await;
    match result? {
        Some(name) if disabled => println!("Disabled {name}."),
        Some(name) => println!("Enabled {name}."),
        None => bail!("no user named \"{username}\""),
    }
    Ok(())
}

async fn reset_password(config: &Config, username: &str, from_stdin: bool) -> anyhow::Result<()> {
    let secret = read_password(from_stdin)?;
    let secret = NewPassword::parse(&secret, username)?;
    let hash = password::hash(secret.expose().to_owned()).await?;
    let database = Database::open(config).await?;
    let result = async {
        let mut tx = database.pool.begin().await?;
        let name = db::users::reset_password(
            &mut tx,
            &db::audit::Actor::command_line(),
            db::users::Who::Username(username),
            &hash,
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(name)
    }
    .await;
    database.close().await;
    match result? {
        Some(name) => println!("Set a new password for {name}."),
        None => bail!("no user named \"{username}\""),
    }
    Ok(())
}

async fn create_user(config: &Config, args: &UserCreate) -> anyhow::Result<()> {
    // Check everything that needs no database first, so a mistake costs nothing.
    let username = Username::parse(&args.username)?;
    let display_name =
        DisplayName::parse(args.display_name.as_deref().unwrap_or(username.as_str()))?;
    let role = match args.role {
        RoleArg::User => Role::User,
        RoleArg::Admin => Role::Admin,
        RoleArg::Auditor => Role::Auditor,
    };
    let secret = read_password(args.password_stdin)?;
    let secret = NewPassword::parse(&secret, username.as_str())?;
    let hash = password::hash(secret.expose().to_owned()).await?;

    let database = Database::open(config).await?;
    let result = db::users::create(
        &database.pool,
        &db::users::NewUser {
            username: &username,
            display_name: &display_name,
            role,
            time_zone: &config.default_time_zone,
            password_hash: Some(&hash),
        },
    )
    .await;
    database.close().await;
    result?;
    println!("Created {} ({}).", username, role.label());
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for a password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat the password: ")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// `portcullis seed ...`
pub async fn seed(config: &Config, command: &SeedCommand) -> anyhow::Result<()> {
    match command {
        SeedCommand::Apply { file } => apply_seed_file(config, file).await,
    }
}

async fn apply_seed_file(config: &Config, file: &Path) -> anyhow::Result<()> {
    let shown = file.display().to_string();
    let text = std::fs::read(file).with_context(|| format!("cannot read {shown}"))?;
    let text = String::from_utf8(text).map_err(|_| anyhow::anyhow!("{shown}: not UTF-8 text"))?;
    let seed = crate::domain::seed::parse(&text).map_err(|errors| report(&shown, &errors))?;
    let database = Database::open(config).await?;
    let result = crate::seeding::apply(&database.pool, &seed).await;
    database.close().await;
    match result {
        Ok(summary) => {
            println!(
                "Applied {shown}: {} users, {} groups, {} resources, {} activities, {} connection profiles, {} access policies.",
                summary.users,
                summary.groups,
                summary.resources,
                summary.activities,
                summary.profiles,
                summary.policies
            );
            Ok(())
        }
        Err(crate::seeding::ApplyError::Invalid(errors)) => Err(report(&shown, &errors)),
        Err(e) => Err(e.into()),
    }
}

fn report(file: &str, errors: &[crate::domain::seed::SeedError]) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(|e| e.display(file)).collect();
    anyhow::anyhow!(
        "{}\nNothing was changed: {} error(s) in {file}.",
        lines.join("\n"),
        errors.len()
    )
}

/// `portcullis import ...`
pub async fn import(config: &Config, command: &ImportCommand) -> anyhow::Result<()> {
    match command {
        ImportCommand::Resources { file, dry_run } => {
            import_resources(config, file, *dry_run).await
        }
    }
}

async fn import_resources(config: &Config, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    use crate::domain::csv_import::{self, Action};
    let shown = file.display().to_string();
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {shown}"))?;
    let lines = csv_import::parse(&bytes).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let database = Database::open(config).await?;
    let result = async {
        let names: Vec<String> = lines
            .iter()
            .filter_map(|l| l.parsed.as_ref().ok().map(|r| r.resource.name.clone()))
            .collect();
        let mut tx = database.pool.begin().await?;
        let existing = db::resources::existing(&mut *tx, &names).await?;
        let credentials = db::credentials::by_name(&mut *tx).await?;
        // The command line shows refusals only; look-alike warnings are for the web preview.
        let plan = csv_import::plan(lines, &existing, &[], &credentials);
        if !plan.can_apply() || dry_run {
            tx.rollback().await?;
            return Ok((plan, None));
        }
        let counts = db::resources::import(
            &mut tx,
            &db::audit::Actor::command_line(),
            &plan.writes,
        )
        .await
        .map_err(|e| match e {
            db::audit::WriteError::NotFound => anyhow::anyhow!(
                "a service credential the file names was deleted meanwhile; nothing was imported"
            ),
            e => anyhow::anyhow!("{e}"),
        })?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>((plan, Some(counts)))
    }
    .await;
    database.close().await;
    let (plan, applied) = result?;
    let summary = format!(
        "{} to create, {} to update, {} unchanged, {} refused",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Unchanged),
        plan.count(Action::Refuse)
    );
    if !plan.can_apply() {
        bail!(
            "{}\nNothing was imported: {summary}.",
            plan.refusals(&shown).join("\n")
        );
    }
    if dry_run {
        for l in &plan.lines {
            println!(
                "{shown}:{}: {}: {} {}",
                l.line,
                l.name,
                l.action.label(),
                l.detail
            );
        }
        println!("Dry run, nothing changed: {summary}.");
    } else if let Some((created, updated)) = applied {
        println!(
            "Imported {shown}: {created} created, {updated} updated, {} unchanged.",
            plan.count(Action::Unchanged)
        );
    }
    Ok(())
}

/// `portcullis token ...`
pub async fn token(config: &Config, command: &TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            name,
            scopes,
            days,
        } => {
            // Checked before the database is opened, so a mistake costs nothing.
            let new = NewToken::parse(name, scopes.split(','), &days.to_string()).map_err(|e| {
                let all: Vec<String> = [e.name, e.scopes, e.days].into_iter().flatten().collect();
                anyhow::anyhow!(all.join(" "))
            })?;
            let database = Database::open(config).await?;
            let result = create_token(&database.pool, user, &new).await;
            database.close().await;
            match result? {
                Some((secret, token)) => {
                    eprintln!(
                        "Created API token \"{}\" for {user} ({}), expiring {}. It is shown once:",
                        token.name,
                        token
                            .scopes
                            .iter()
                            .map(|s| s.key())
                            .collect::<Vec<_>>()
                            .join(", "),
                        token
                            .expires_at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    );
                    println!("{}", secret.as_str());
                    Ok(())
                }
                None => bail!("no user named \"{user}\""),
            }
        }
    }
}

/// Creates the token, audited as the command line's.
async fn create_token(
    pool: &sqlx::PgPool,
    username: &str,
    new: &NewToken,
) -> Result<Option<(Secret, db::api_tokens::Token)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some((id, name)) = db::users::find(&mut *tx, db::users::Who::Username(username)).await?
    else {
        return Ok(None);
    };
    let secret = Secret::generate();
    let token = db::api_tokens::create(
        &mut tx,
        &db::audit::Actor::command_line(),
        id,
        &name,
        new,
        &api_token::digest(secret.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(Some((secret, token)))
}
