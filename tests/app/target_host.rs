//! A real Linux target for provisioning tests: OpenSSH's `sshd`, started by the test on a
//! random loopback port with a config, host key and authorized keys of its own in a temporary
//! folder (the machine's own accounts and SSH settings are not touched), and the OpenSSH
//! client as the user's.
//!
//! Accounts that tests make on this machine carry the host's reserved prefix (`pct` and four
//! random letters); dropping the host removes every account with it, also when a test failed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sshd` and what a test needs to reach it.
pub struct TargetHost {
    pub port: u16,
    /// The host key's public half, `type base64`.
    pub host_key: String,
    /// The private key of the service account (root) as an OpenSSH key file's text.
    pub service_key: String,
    /// Account names made by this test start with this.
    pub prefix: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn keygen(path: &std::path::Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl TargetHost {
    /// Starts `sshd` on a free loopback port.
    pub fn start() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the provisioning tests make accounts on this machine: run them as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("portcullis-sshd-")
            .tempdir()
            .expect("temp dir");
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("service_key"));
        std::fs::create_dir_all(dir.path().join("authorized")).unwrap();
        std::fs::copy(
            dir.path().join("service_key.pub"),
            dir.path().join("authorized/root"),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(dir.path().join("host_key.pub")).unwrap();
        let host_key = host_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let service_key = std::fs::read_to_string(dir.path().join("service_key")).unwrap();
        let letters: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .filter(char::is_ascii_lowercase)
            .take(4)
            .collect();
        let mut host = Self {
            port: free_port(),
            host_key,
            service_key,
            prefix: format!("pct{letters:a<4}"),
            dir,
            child: None,
        };
        host.launch();
        host
    }

    fn config(&self) -> PathBuf {
        let d = self.dir.path().display();
        let text = format!(
            "ListenAddress 127.0.0.1\nPort {}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized/%u .ssh/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n\
             AllowTcpForwarding no\nX11Forwarding no\nLogLevel ERROR\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            self.port
        );
        let path = self.dir.path().join("sshd_config");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts (or starts again) `sshd`, waiting until it accepts connections.
    pub fn launch(&mut self) {
        // The privilege separation directory sshd insists on.
        std::fs::create_dir_all("/run/sshd").ok();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts (apt-get install openssh-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Makes every command of the service account run, then hang for `seconds` before the
    /// connection ends (`command=` in its authorized keys): a grant is done on the target but
    /// never reported back, the moment to kill the server in a fault test. `None`: normal.
    #[allow(dead_code)] // the fault tests use it
    pub fn hang_after_commands(&self, seconds: Option<u32>) {
        let key = std::fs::read_to_string(self.dir.path().join("service_key.pub")).unwrap();
        let line = match seconds {
            Some(s) => format!("command=\"sh -s; sleep {s}\" {key}"),
            None => key,
        };
        std::fs::write(self.dir.path().join("authorized/root"), line).unwrap();
    }

    /// Stops `sshd` (the target becomes unreachable).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Whether the account exists on this machine (`getent passwd`).
    pub fn account_exists(name: &str) -> bool {
        Command::new("getent")
            .args(["passwd", name])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The groups the account is in.
    pub fn groups_of(name: &str) -> String {
        let out = Command::new("id").args(["-nG", name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Makes a local account with `password` (a managed account's starting state).
    pub fn make_account(&self, name: &str, password: &str) {
        assert!(name.starts_with(&self.prefix));
        let ok = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "useradd {name}");
        set_password(name, password);
    }

    /// Logs in as `account` with `password` through the OpenSSH client, runs `whoami`, and
    /// returns what it printed, or None when the login was refused.
    pub fn login_with_password(&self, account: &str, password: &str) -> Option<String> {
        let askpass = self.dir.path().join("askpass");
        std::fs::write(
            &askpass,
            "#!/bin/sh\nprintf '%s\\n' \"$PORTCULLIS_TEST_PASSWORD\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        let known = self.dir.path().join("known_hosts");
        std::fs::write(
            &known,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key),
        )
        .unwrap();
        let out = Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args([
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=5",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{account}@127.0.0.1"))
            .arg("whoami")
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("PORTCULLIS_TEST_PASSWORD", password)
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// Sets a local account's password.
pub(crate) fn set_password(name: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{name}:{password}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "chpasswd {name}");
}

impl Drop for TargetHost {
    fn drop(&mut self) {
        self.stop();
        // Remove every account this test made, even when it failed halfway.
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        for name in passwd
            .lines()
            .filter_map(|l| l.split(':').next())
            .filter(|n| n.starts_with(&self.prefix))
        {
            Command::new("pkill")
                .args(["-KILL", "-u", name])
                .status()
                .ok();
            Command::new("userdel")
                .args(["-r", name])
                .stderr(Stdio::null())
                .status()
                .ok();
        }
    }
}
