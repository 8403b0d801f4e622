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

/// Run `argv` with `parts` on stdin, one after the other; Ok(output) when
/// it exits 0 in time. On failure, the second string is its output.
pub fn run(argv: &[String], parts: &[&[u8]], timeout: Duration) -> Result<String, Failed> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failed::Start { too_big: e.raw_os_error() == Some(libc::E2BIG) })?;
    let (Some(mut stdin), Some(mut out_pipe), Some(mut err_pipe)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Failed::Start { too_big: false });
    };
    std::thread::scope(|scope| {
        // Write from a thread: a child that never reads must not block us
        // past the timeout (killing it breaks the pipe and ends the thread).
        scope.spawn(move || {
            for p in parts {
                if stdin.write_all(p).is_err() {
                    break;
                }
            }
        });
        let reader = scope.spawn(move || {
            use std::io::Read;
            let mut s = Vec::new();
            let _ = out_pipe.read_to_end(&mut s);
            let mut e = Vec::new();
            let _ = err_pipe.read_to_end(&mut e);
            s.extend_from_slice(&e);
            String::from_utf8_lossy(&s).into_owned()
        });
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failed::Timeout);
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = e;
                    return Err(Failed::Timeout);
                }
            }
        };
        let output = reader.join().unwrap_or_default();
        if status.success() {
            Ok(output)
        } else {
            Err(Failed::Exit { status, output })
        }
    })
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
}
