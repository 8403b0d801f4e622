//! Starting a transport program: its input written from a thread, its
//! output collected, a time limit, and what its end means.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a run ended, when it did not end well.
#[derive(Debug)]
pub enum Failed {
    /// The program could not be started; `too_big` when the kernel refused
    /// the argument list (E2BIG), which no retry can cure.
    Start { too_big: bool },
    /// Killed at the time limit.
    Timeout,
    /// It exited non-zero (or died of a signal); its output is kept for
    /// classification only, never for the log.
    Exit { status: ExitStatus, output: String },
}

/// Output kept from each of stdout and stderr, for classification.
const OUTPUT_KEPT: u64 = 64 * 1024;

/// How long to wait for the output pipes after the program exited: a
/// program may leave a child holding them (Exim's sendmail forks a
/// background delivery; a killed sendmail leaves postdrop).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Read at most [`OUTPUT_KEPT`] bytes of a pipe on a thread of its own,
/// and the rest into the void, so the writer never blocks on us.
fn drain(mut pipe: impl std::io::Read + Send + 'static, tx: std::sync::mpsc::Sender<Vec<u8>>) {
    use std::io::Read;
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut pipe).take(OUTPUT_KEPT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        let _ = tx.send(kept);
    });
}

/// Run `argv` with `parts` on stdin, one after the other; Ok(output) when
/// it exits 0 in time. The program runs in a process group of its own: at
/// the time limit the whole group is killed, so nothing it started can
/// hold our pipes (and this process) past the limit.
pub fn run(argv: &[String], parts: &[&[u8]], timeout: Duration) -> Result<String, Failed> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Failed::Start { too_big: e.raw_os_error() == Some(libc::E2BIG) })?;
    let group = child.id() as libc::pid_t;
    let kill_group = |child: &mut std::process::Child| {
        // SAFETY: killpg only sends a signal; the group is the child's own,
        // made at spawn, so no other process of ours is in it.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    };
    let (Some(mut stdin), Some(out_pipe), Some(err_pipe)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill_group(&mut child);
        return Err(Failed::Start { too_big: false });
    };
    let (tx, rx) = std::sync::mpsc::channel();
    drain(out_pipe, tx.clone());
    drain(err_pipe, tx);
    let status = std::thread::scope(|scope| {
        // Write from a thread: a child that never reads must not block us
        // past the timeout (killing it breaks the pipe and ends the thread).
        scope.spawn(move || {
            for p in parts {
                if stdin.write_all(p).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match child.try_wait() {
                Ok(Some(st)) => break Ok(st),
                Ok(None) if start.elapsed() >= timeout => {
                    kill_group(&mut child);
                    break Err(Failed::Timeout);
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(_) => {
                    kill_group(&mut child);
                    break Err(Failed::Timeout);
                }
            }
        }
    })?;
    let deadline = Instant::now() + OUTPUT_GRACE;
    let mut output = Vec::new();
    for _ in 0..2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(part) => output.extend_from_slice(&part),
            Err(_) => break,
        }
    }
    let output = String::from_utf8_lossy(&output).into_owned();
    if status.success() {
        Ok(output)
    } else {
        Err(Failed::Exit { status, output })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_list_too_long_for_the_kernel_is_told_apart() {
        let mut argv = vec!["/bin/true".to_string()];
        argv.extend((0..200_000).map(|i| format!("recipient-number-{i}@example.org")));
        match run(&argv, &[], Duration::from_secs(5)) {
            Err(Failed::Start { too_big }) => assert!(too_big),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exit_status_and_output_are_reported() {
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "cat >/dev/null; echo 441 no; exit 3".into()];
        match run(&argv, &[b"x"], Duration::from_secs(5)) {
            Err(Failed::Exit { status, output }) => {
                assert_eq!(status.code(), Some(3));
                assert!(output.contains("441"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_limit() {
        let argv = vec!["/bin/sleep".to_string(), "30".into()];
        assert!(matches!(run(&argv, &[], Duration::from_millis(200)), Err(Failed::Timeout)));
    }

    #[test]
    fn a_grandchild_holding_the_pipes_does_not_hold_us() {
        // The program exits at once but leaves a child with its stdout and
        // stderr open for 30 s.
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "cat >/dev/null; sleep 30 & echo done".into()];
        let t = Instant::now();
        assert!(run(&argv, &[b"x"], Duration::from_secs(20)).is_ok());
        assert!(t.elapsed() < Duration::from_secs(20), "waited for the grandchild: {:?}", t.elapsed());
    }

    #[test]
    fn at_the_time_limit_the_whole_group_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            format!("sleep 60 & echo $! > {}; wait", pidfile.display()),
        ];
        assert!(matches!(run(&argv, &[], Duration::from_millis(500)), Err(Failed::Timeout)));
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Gone, or a zombie waiting for init to reap it: not running.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'));
        assert!(!running, "the grandchild survived the time limit: {stat}");
    }
}
