//! Dependencies a test owns: its own PostgreSQL, Redis or NATS server on a free port, in a
//! temporary directory, stopped and started again by the test (by pid, or `pg_ctl` for
//! PostgreSQL) to see how Marquee lives through the outage. Never the shared servers on the
//! standard ports: other tests use those at the same time.
//!
//! Every kind follows the same shape (`start` → `url` → `stop`/`restart` → dropped = gone), so a
//! test can kill any of them the same way (see `Service`).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A local service a test started and can stop and start again.
pub trait Service {
    /// A URL clients connect with.
    fn url(&self) -> String;
    /// Stops abruptly (like a crash or a killed container): no graceful shutdown.
    fn stop(&mut self);
    /// Starts again on the same port with the same data; returns once it accepts connections.
    fn start_again(&mut self);
}

/// A port nobody listens on right now. The OS hands out ephemeral ports in sequence, so the
/// window in which another process could take it before the service binds is tiny.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free local port")
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, what: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not accept connections on port {port} within {limit:?}");
}

/// `program` on the PATH, or in one of `dirs`, or a clear failure naming the package.
fn find_program(program: &str, dirs: &[PathBuf], package: &str) -> PathBuf {
    let mut candidates: Vec<PathBuf> = dirs.iter().map(|d| d.join(program)).collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(program)));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is needed by this test and was not found: install Debian's {package} (.ci/run does)")
        })
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL cluster of the test's own: `initdb` into a temporary directory, listening on a
/// free loopback port. PostgreSQL refuses to run as root, and the tests run as root in CI, so
/// its tools run as the `postgres` user (Debian's package creates it), who owns the directory.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    running: bool,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = postgres_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("marquee-pg-")
            .tempdir()
            .expect("temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        let as_root = is_root();
        if as_root {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path()),
                "chown of the PostgreSQL directory to the postgres user",
            );
        }
        let mut initdb = pg_command(&bin, "initdb", as_root);
        initdb.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(&mut initdb, "initdb");
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            running: false,
        };
        pg.start_again();
        pg
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = pg_command(&self.bin, "pg_ctl", is_root());
        cmd.arg("-D").arg(self.data_dir());
        cmd
    }

    /// The server's pid, from its pid file.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The cluster's maintenance database, for creating test databases.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Service for Postgres {
    fn url(&self) -> String {
        self.admin_url()
    }

    /// `pg_ctl stop -m immediate`: the postmaster SIGQUITs every backend, so clients see their
    /// connections drop mid-transaction — what a crash or a failover looks like to them.
    fn stop(&mut self) {
        if self.running {
            run(
                self.pg_ctl().args(["stop", "-m", "immediate", "-w"]),
                "pg_ctl stop",
            );
            self.running = false;
        }
    }

    fn start_again(&mut self) {
        if self.running {
            return;
        }
        let log = self.dir.path().join("postgres.log");
        // The socket goes into the data directory: /var/run/postgresql may not be writable.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.data_dir().display()
        );
        let mut cmd = self.pg_ctl();
        cmd.args(["start", "-w", "-t", "60", "-o", &options, "-l"])
            .arg(&log)
            .stdout(Stdio::null());
        let out = cmd.output().expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
        wait_for_port(self.port, "PostgreSQL", Duration::from_secs(30));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .pg_ctl()
                .args(["stop", "-m", "immediate", "-w"])
                .output();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `tool` from PostgreSQL's binaries, run as the `postgres` user when we are root.
fn pg_command(bin: &Path, tool: &str, as_root: bool) -> Command {
    let program = bin.join(tool);
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<major>/bin; the
/// newest installed major wins.
fn postgres_bin_dir() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("pg_ctl").is_file())
        .collect();
    majors.sort();
    match majors.pop() {
        Some((_, bin)) => bin,
        None => find_program("pg_ctl", &[], "postgresql")
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Redis and NATS: one process each, killed by pid.

/// A server process the test spawned; `stop` kills it (SIGKILL, by pid) and `start_again`
/// spawns the same command line again.
struct Process {
    what: &'static str,
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self) {
        if self.child.is_some() {
            return;
        }
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.what));
        self.child = Some(child);
        wait_for_port(self.port, self.what, Duration::from_secs(20));
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-server` without persistence on a free port.
pub struct Redis {
    process: Process,
}

impl Redis {
    pub fn start() -> Redis {
        let port = free_port();
        let mut process = Process {
            what: "redis-server",
            program: find_program("redis-server", &[], "redis-server"),
            args: [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(str::to_owned)
            .to_vec(),
            port,
            child: None,
        };
        process.spawn();
        Redis { process }
    }
}

impl Service for Redis {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.process.port)
    }
    fn stop(&mut self) {
        self.process.kill();
    }
    fn start_again(&mut self) {
        self.process.spawn();
    }
}

/// `nats-server` with JetStream, its store in a temporary directory that outlives restarts
/// (so streams survive a stop/start, as with a real deployment's volume).
pub struct Nats {
    process: Process,
    _store: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Nats {
        let port = free_port();
        let store = tempfile::Builder::new()
            .prefix("marquee-nats-")
            .tempdir()
            .expect("temporary directory");
        let mut process = Process {
            what: "nats-server",
            program: find_program("nats-server", &[PathBuf::from("/usr/sbin")], "nats-server"),
            args: vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                store.path().display().to_string(),
            ],
            port,
            child: None,
        };
        process.spawn();
        Nats {
            process,
            _store: store,
        }
    }
}

impl Service for Nats {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.process.port)
    }
    fn stop(&mut self) {
        self.process.kill();
    }
    fn start_again(&mut self) {
        self.process.spawn();
    }
}
