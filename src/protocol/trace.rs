//! The trace fields a receiving MTA adds to a message (`Received:`,
//! `Return-Path:`, `Delivered-To:`, `X-Original-To:`). They name the
//! server's host and the route the mail took to it. Mail to a nym that
//! goes through its reply blocks in clear (without `cryptrecv`) is read by
//! every remailer on the way, so there they are removed (REPLY-BLOCKS.md
//! 7.1, our decision); encrypted forms keep the message as received.

/// Header fields removed from mail sent on in clear.
const TRACE: [&str; 4] = ["received", "return-path", "delivered-to", "x-original-to"];

/// `raw` without the trace fields of its header (continuation lines
/// included); the body is untouched. A message without a blank line is
/// all header.
pub fn strip(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, next) = rest.split_at(end);
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.is_empty() {
            // The end of the header: the rest goes as it is.
            out.extend_from_slice(rest);
            return out;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if !dropping {
                out.extend_from_slice(line);
            }
        } else {
            dropping = is_trace(bare);
            if !dropping {
                out.extend_from_slice(line);
            }
        }
        rest = next;
    }
    out
}

fn is_trace(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else { return false };
    let name = &line[..colon];
    TRACE.iter().any(|t| name.trim_ascii_end().eq_ignore_ascii_case(t.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_fields_and_their_continuations_are_removed_from_the_header_only() {
        let raw = b"Return-Path: <sam@source.test>\nReceived: from mx.source.test\n\tby host7.operator.internal\n\
            From: sam@source.test\nDELIVERED-TO: quill@nym.test\nX-Original-To: quill@nym.test\nSubject: hi\n \
            folded\n\nReceived: in the body stays\n";
        let out = strip(raw);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: sam@source.test\nSubject: hi\n folded\n\nReceived: in the body stays\n"
        );
    }

    #[test]
    fn a_message_without_trace_fields_is_unchanged() {
        for raw in [
            &b"From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n"[..],
            b"Subject: only a header",
            b"",
            b"\n\nbody",
        ] {
            assert_eq!(strip(raw), raw);
        }
    }

    #[test]
    fn a_field_name_that_merely_starts_like_a_trace_field_stays() {
        let raw = b"Received-SPF: pass\nX-Received: x\nReceived : spaced\n\nb\n";
        assert_eq!(strip(raw), b"Received-SPF: pass\nX-Received: x\n\nb\n");
    }
}
