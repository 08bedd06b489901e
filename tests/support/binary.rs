//! `gitgate serve` run as the real binary: on a free loopback port, its logs drained on a
//! thread (a full pipe would block the server), stopped with SIGTERM as Kubernetes stops it.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The running binary.
pub struct Served {
    child: Child,
    logs: JoinHandle<String>,
}

impl Served {
    /// Runs `gitgate` with `args` (and `env` on top of the test's own environment).
    pub fn start(args: &[&str], env: &[(&str, String)]) -> Served {
        Served::start_via(&[], args, env)
    }

    /// [`Served::start`] through `launcher` (a program and its arguments, such as `unshare`),
    /// which is given the binary's path and `args` after its own and must exec it.
    pub fn start_via(launcher: &[String], args: &[&str], env: &[(&str, String)]) -> Served {
        let binary = env!("CARGO_BIN_EXE_gitgate");
        let mut command = match launcher.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let logs = std::thread::spawn(move || {
            let mut logs = String::new();
            stderr.read_to_string(&mut logs).unwrap();
            logs
        });
        Served { child, logs }
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL: no cleanup, as the kernel's OOM killer or a node failure
    /// ends it), waits for it, and returns everything it logged.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.logs.join().unwrap()
    }

    /// Sends SIGTERM, waits for the exit, and returns how it exited and everything it logged.
    pub fn stop(mut self) -> (ExitStatus, String) {
        unsafe extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        // SAFETY: a plain syscall on the pid of a child this struct owns and has not reaped.
        unsafe { kill(self.child.id() as i32, 15) };
        let status = self.child.wait().unwrap();
        (status, self.logs.join().unwrap())
    }
}
