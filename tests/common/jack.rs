//! A private jackd (dummy driver) for the MIDI tests, and the re-run of a test inside it: the
//! test binary runs itself again with `JACK_DEFAULT_SERVER` set (setting the variable in-process
//! would need `unsafe`). And the tests' own virtual controller ports, opened and closed under
//! the deck's midir client lock.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use midir::os::unix::{VirtualInput, VirtualOutput};
use scope_deck::controls::midi::client_lock::Guarded;

/// Set in the child that runs a test's body against the private server.
pub const INNER: &str = "SCOPE_DECK_JACK_INNER";

/// A running private jackd; stopped on drop.
pub struct Jackd {
    child: Child,
    /// The server name (`-n`).
    pub name: String,
    /// jackd's stdout and stderr, quoted when it does not start.
    log: tempfile::NamedTempFile,
}

impl Jackd {
    /// Starts `jackd -n <prefix>-<pid>` with the dummy driver at 48 kHz and `period` frames, and
    /// waits until it answers. Real-time like a stage machine's JACK where the system grants it
    /// (jackd falls back to normal scheduling, with a warning, where it does not): a non-real-time
    /// JACK under load delays events by whole periods and hides how on time the deck's own
    /// clock thread is.
    pub fn start(prefix: &str, period: u32) -> Jackd {
        let name = format!("{prefix}-{}", std::process::id());
        let log = tempfile::NamedTempFile::new().expect("a temporary file for jackd's log");
        let out = log.reopen().expect("jackd's log");
        let child = Command::new("jackd")
            .args(["-n", &name, "-d", "dummy", "-r", "48000", "-p"])
            .arg(period.to_string())
            .stdout(out.try_clone().expect("jackd's log"))
            .stderr(out)
            .spawn()
            .expect("jackd (Debian package jackd2) must be installed");
        let mut jackd = Jackd { child, name, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new("jack_lsp")
            .env("JACK_DEFAULT_SERVER", &jackd.name)
            .env("JACK_NO_START_SERVER", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            // "Too many servers already active": JACK's registry (/dev/shm/jack-shm-registry)
            // holds 8 servers and keeps those that died without unregistering, e.g. the server
            // of a test whose process crashed; it frees a slot only for a server of the same name.
            if let Ok(Some(status)) = jackd.child.try_wait() {
                panic!("jackd exited at start ({status}):\n{}", jackd.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "jackd did not start:\n{}",
                jackd.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        jackd
    }

    /// What jackd printed so far.
    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Runs this test binary's test `exact` again, inside this server, with [`INNER`] set.
    pub fn rerun_inside(&self, exact: &str) -> ExitStatus {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", exact, "--nocapture", "--test-threads=1"])
            .env(INNER, "1")
            .env("JACK_DEFAULT_SERVER", &self.name)
            .env("JACK_NO_START_SERVER", "1")
            .status()
            .unwrap()
    }
}

impl Drop for Jackd {
    /// SIGTERM first: jackd then leaves JACK's shared server registry (which holds only a few
    /// servers; SIGKILLed servers stay registered and later servers fail to start with "Too
    /// many servers already active"). SIGKILL only if it does not exit.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A virtual JACK MIDI output (`client:port`) standing in for a controller. Opened and closed
/// under the deck's client lock, like every midir client in this process: libjack can deadlock
/// when one thread opens a client while another closes one (see
/// `scope_deck::controls::midi::client_lock`), and the MIDI edge's threads open and close theirs
/// while a test's own ports come and go.
pub fn virtual_output(client: &str, port: &str) -> Guarded<midir::MidiOutputConnection> {
    Guarded::open(|| {
        midir::MidiOutput::new(client)
            .map_err(|e| e.to_string())?
            .create_virtual(port)
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("virtual MIDI output {client}:{port}: {e}"))
}

/// A virtual JACK MIDI input (`client:port`) calling `callback` with JACK's timestamp (µs) and
/// the bytes of each message; opened and closed under the client lock like
/// [`virtual_output`].
pub fn virtual_input(
    client: &str,
    port: &str,
    mut callback: impl FnMut(u64, &[u8]) + Send + 'static,
) -> Guarded<midir::MidiInputConnection<()>> {
    Guarded::open(|| {
        midir::MidiInput::new(client)
            .map_err(|e| e.to_string())?
            .create_virtual(port, move |stamp, bytes, _| callback(stamp, bytes), ())
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("virtual MIDI input {client}:{port}: {e}"))
}
