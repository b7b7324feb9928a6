//! The node processes: start, kill, stop, liveness and the key buffer's progress.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{io, Devnet, DevnetError, NodeStatus};

impl Devnet {
    /// Starts (or restarts) node `i`'s process; its output goes to its log file.
    pub fn start_node(&mut self, i: u32) -> Result<(), DevnetError> {
        self.start_node_with_env(i, &[])
    }

    /// As [`Devnet::start_node`], with extra environment variables for this start
    /// only (a crash test arms a [`crate::failpoint`] this way).
    pub fn start_node_with_env(&mut self, i: u32, env: &[(&str, &str)]) -> Result<(), DevnetError> {
        let dir = self.node_dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .map_err(io("open the node log"))?;
        let err = log.try_clone().map_err(io("open the node log"))?;
        let mut cmd = match self
            .opts
            .placement
            .as_ref()
            .and_then(|p| p.nodes.get((i as usize).wrapping_sub(1)))
            .and_then(|h| h.launcher.split_first())
        {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.opts.node_binary);
                c
            }
            None => Command::new(&self.opts.node_binary),
        };
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(dir.join("node.toml"))
            .env("TORUS_LOG", &self.opts.log_filter)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io(format!("start {}", self.opts.node_binary.display())))?;
        if let Some(p) = self.procs.get_mut((i as usize).wrapping_sub(1)) {
            p.child = Some(child);
        }
        Ok(())
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: u32) -> Option<u32> {
        self.procs
            .get((i as usize).wrapping_sub(1))
            .and_then(|p| p.child.as_ref())
            .map(std::process::Child::id)
    }

    /// Kills node `i` with SIGKILL (no clean-up at all).
    pub fn kill(&mut self, i: u32) -> Result<(), DevnetError> {
        if let Some(Some(mut c)) = self
            .procs
            .get_mut((i as usize).wrapping_sub(1))
            .map(|p| p.child.take())
        {
            c.kill().map_err(io(format!("kill node {i}")))?;
            let _ = c.wait();
        }
        Ok(())
    }

    /// Pauses node `i` (SIGSTOP): it holds its connections and answers nothing.
    pub fn pause(&self, i: u32) -> Result<(), DevnetError> {
        self.signal(i, nix::sys::signal::Signal::SIGSTOP)
    }

    /// Resumes node `i` after [`Devnet::pause`] (SIGCONT).
    pub fn resume(&self, i: u32) -> Result<(), DevnetError> {
        self.signal(i, nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, i: u32, sig: nix::sys::signal::Signal) -> Result<(), DevnetError> {
        let Some(pid) = self.pid(i) else {
            return Err(DevnetError::Invalid(format!("node {i} is not running")));
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).map_err(|e| {
            DevnetError::Io {
                what: format!("signal node {i} ({sig})"),
                err: std::io::Error::from_raw_os_error(e as i32),
            }
        })
    }

    /// Stops node `i` with SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self, i: u32) -> Result<(), DevnetError> {
        let Some(Some(mut c)) = self
            .procs
            .get_mut((i as usize).wrapping_sub(1))
            .map(|p| p.child.take())
        else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = c.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        c.kill().map_err(io(format!("kill node {i}")))?;
        let _ = c.wait();
        Ok(())
    }

    /// Fails if a started node process has exited.
    pub fn check_alive(&mut self) -> Result<(), DevnetError> {
        for (pos, p) in self.procs.iter_mut().enumerate() {
            if let Some(c) = &mut p.child {
                if let Ok(Some(status)) = c.try_wait() {
                    let index = pos as u32 + 1;
                    p.child = None;
                    return Err(DevnetError::NodeExited {
                        index,
                        status: status.to_string(),
                        log: self
                            .opts
                            .data_dir
                            .join(format!("node{index}"))
                            .join("node.log")
                            .display()
                            .to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// How node `i`'s process ended, once it has (it is then no longer running);
    /// `None` while it runs or when it was not started.
    pub fn exited(&mut self, i: u32) -> Option<std::process::ExitStatus> {
        let p = self.procs.get_mut((i as usize).wrapping_sub(1))?;
        let status = p.child.as_mut()?.try_wait().ok()??;
        p.child = None;
        Some(status)
    }

    /// Whether node `i`'s process is running.
    pub fn is_running(&self, i: u32) -> bool {
        self.procs
            .get((i as usize).wrapping_sub(1))
            .is_some_and(|p| p.child.is_some())
    }

    /// Node `i`'s status (None while it does not answer).
    pub async fn status(&self, i: u32) -> Option<NodeStatus> {
        let p = self.ports(i).ok()?;
        let url = format!("{}/bftStatus", self.http_base(p));
        let r = self.http.get(&url).send().await.ok()?;
        r.json::<NodeStatus>().await.ok()
    }

    /// Waits until every running node reports at least `keys` created keys,
    /// calling `progress(min created)` as it goes.
    pub async fn wait_for_keys(
        &mut self,
        keys: u64,
        timeout: Duration,
        mut progress: impl FnMut(u64),
    ) -> Result<(), DevnetError> {
        let t0 = Instant::now();
        loop {
            self.check_alive()?;
            let mut min: Option<u64> = None;
            let mut all = true;
            for i in 1..=self.layout.n {
                if !self.is_running(i) {
                    continue;
                }
                match self.status(i).await {
                    Some(s) => {
                        min = Some(min.map_or(s.keys_created, |m: u64| m.min(s.keys_created)))
                    }
                    None => all = false,
                }
            }
            let m = min.unwrap_or(0);
            progress(if all { m } else { 0 });
            if all && m >= keys {
                return Ok(());
            }
            if t0.elapsed() >= timeout {
                return Err(DevnetError::Timeout {
                    secs: timeout.as_secs(),
                    what: format!("{keys} keys (have {m})"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
