//! The administrators' command line: everything but `serve`.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, bail};

use crate::auth::password;
use crate::config::{Config, RoleArg, SeedCommand, UserCommand, UserCreate};
use crate::db::{self, Database};
use crate::domain::names::{DisplayName, NewPassword, Username};
use crate::domain::role::Role;

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
    }
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
    let result = db::seed::apply(&database.pool, &seed).await;
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
        Err(db::seed::ApplyError::Invalid(errors)) => Err(report(&shown, &errors)),
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
