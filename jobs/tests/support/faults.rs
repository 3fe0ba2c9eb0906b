//! Faults for the integration tests: SIGKILL of jobs and services, and the stack's restart.

use std::process::{Child, Stdio};

/// A continuous job (`jobs cdc`, `jobs dwh`), killed (SIGKILL) when dropped.
pub struct Job(Child);

impl Job {
    pub fn spawn(job: &str) -> Self {
        Self(
            super::jobs(&[job, "--trigger-interval-ms", "500"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start jobs cdc"),
        )
    }

    pub fn kill9(mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn pid_of(pattern: &str) -> Option<i32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
}

pub fn kill9(pattern: &str) {
    let pid = pid_of(pattern).unwrap_or_else(|| panic!("no process matches {pattern}"));
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

pub fn stack_up() {
    let root = testkit::workspace_root();
    let status = std::process::Command::new(root.join("infra/local/stack.sh"))
        .arg("up")
        .stdout(Stdio::null())
        .status()
        .expect("stack.sh up");
    assert!(status.success(), "infra/local/stack.sh up failed");
}
