//! How to reach a resource: the SSH command line, the .rdp file, the HTTPS link.

/// Where and as whom.
pub struct Target<'a> {
    pub address: &'a str,
    pub port: Option<i32>,
    pub login: &'a str,
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '@' | ':' | '/' | '%' | '+' | '=')
        });
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `ssh -p PORT LOGIN@ADDRESS`, through `-J JUMP` when a jump host is configured.
pub fn ssh_command(t: &Target<'_>, jump: Option<&str>) -> String {
    let mut parts = vec!["ssh".to_owned()];
    if let Some(jump) = jump.filter(|j| !j.trim().is_empty()) {
        parts.push("-J".into());
        parts.push(shell_word(jump.trim()));
    }
    parts.push("-p".into());
    parts.push(t.port.unwrap_or(22).to_string());
    parts.push(shell_word(&format!("{}@{}", t.login, t.address)));
    parts.join(" ")
}

/// An `ssh://` link for clients that register the scheme.
pub fn ssh_url(t: &Target<'_>) -> String {
    let login: String = t
        .login
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("ssh://{login}@{}:{}", t.address, t.port.unwrap_or(22))
}

/// The resource's web address.
pub fn https_url(t: &Target<'_>) -> String {
    let address = t.address.trim();
    if address.starts_with("https://") || address.starts_with("http://") {
        return address.to_owned();
    }
    match t.port {
        Some(443) | None => format!("https://{address}/"),
        Some(p) => format!("https://{address}:{p}/"),
    }
}

/// How to reach a database resource instead of `ssh` (issue 16): for PostgreSQL a `psql`
/// command line, for any other database its `host:port`, for a client to use.
pub fn database_line(t: &Target<'_>, platform: &str) -> String {
    if platform.to_ascii_lowercase().starts_with("postgres") {
        format!(
            "psql -h {} -p {} -U {}",
            shell_word(t.address),
            t.port.unwrap_or(5432),
            shell_word(t.login)
        )
    } else {
        match t.port {
            Some(port) => format!("{}:{port}", t.address),
            None => t.address.to_owned(),
        }
    }
}

/// A Remote Desktop connection file: the address, the user name and safe defaults. Lines end
/// in CRLF, as mstsc writes them.
pub fn rdp_file(t: &Target<'_>) -> String {
    let lines = [
        format!("full address:s:{}:{}", t.address, t.port.unwrap_or(3389)),
        format!("username:s:{}", t.login),
        "prompt for credentials:i:1".to_owned(),
        "authentication level:i:2".to_owned(),
        "screen mode id:i:2".to_owned(),
        "use multimon:i:0".to_owned(),
        "redirectclipboard:i:1".to_owned(),
        "redirectdrives:i:0".to_owned(),
        "redirectprinters:i:0".to_owned(),
        "autoreconnection enabled:i:1".to_owned(),
    ];
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// A file name from a resource name: letters, digits, '-', '_' and '.'.
pub fn file_name(resource: &str) -> String {
    let name: String = resource
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.trim_matches(['_', '.']).is_empty() {
        "session".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(address: &'a str, port: Option<i32>, login: &'a str) -> Target<'a> {
        Target {
            address,
            port,
            login,
        }
    }

    #[test]
    fn databases_get_a_client_line_not_ssh() {
        assert_eq!(
            database_line(
                &t("pg-db-01.corp.example", Some(5432), "svc_dba"),
                "PostgreSQL"
            ),
            "psql -h pg-db-01.corp.example -p 5432 -U svc_dba"
        );
        assert_eq!(
            database_line(&t("sql-db-01.corp.example", Some(1433), "sa"), "SQL Server"),
            "sql-db-01.corp.example:1433"
        );
    }

    #[test]
    fn ssh_lines_name_port_login_and_jump_host() {
        assert_eq!(
            ssh_command(&t("lnx-01.example", Some(2222), "alice"), None),
            "ssh -p 2222 alice@lnx-01.example"
        );
        assert_eq!(
            ssh_command(
                &t("10.0.0.5", None, "pc-alice-1"),
                Some("bastion.example:22")
            ),
            "ssh -J bastion.example:22 -p 22 pc-alice-1@10.0.0.5"
        );
        assert_eq!(
            ssh_command(&t("h", None, "CORP\\admin"), None),
            r"ssh -p 22 'CORP\admin@h'"
        );
        assert_eq!(
            ssh_url(&t("h", None, "CORP\\admin")),
            "ssh://CORP%5Cadmin@h:22"
        );
    }

    #[test]
    fn rdp_files_carry_address_and_user() {
        let f = rdp_file(&t("win-01.example", Some(3389), "pc_alice_1"));
        assert!(f.starts_with("full address:s:win-01.example:3389\r\nusername:s:pc_alice_1\r\n"));
        assert!(f.ends_with("\r\n"));
        assert_eq!(file_name("win srv/01"), "win_srv_01");
    }

    #[test]
    fn https_links_keep_non_default_ports() {
        assert_eq!(
            https_url(&t("grafana.example", Some(443), "")),
            "https://grafana.example/"
        );
        assert_eq!(
            https_url(&t("10.0.0.1", Some(8443), "")),
            "https://10.0.0.1:8443/"
        );
    }
}
