//! RFC 6587 framing of a rendered message inside the batch buffer: octet-counting
//! (`LEN SP MSG`, the default, the only form over TLS and for syslog-ng `syslog()`), LF
//! (`MSG LF`) or none (UDP: one datagram per message). Also the LF escaping that LF
//! framing needs: a line feed inside a message would end the frame early, so message
//! bytes are written with each LF as the two characters `\n`.

use super::config::Framing;

/// Frames the message rendered at `out[start..]`, in place.
pub(crate) fn frame(out: &mut Vec<u8>, start: usize, framing: Option<Framing>) {
    match framing {
        None => {}
        Some(Framing::Lf) => out.push(b'\n'),
        Some(Framing::OctetCounting) => {
            // Append "LEN " and rotate it to the front: one memmove of the message, no
            // scratch buffer (render is called concurrently from several shard tasks).
            let len = out.len() - start;
            out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            out.push(b' ');
            let prefix = out.len() - start - len;
            out[start..].rotate_right(prefix);
        }
    }
}

/// Appends `bytes`, escaping LF as `\n` when `escape_lf` (LF framing).
pub(crate) fn push_escaped(out: &mut Vec<u8>, bytes: &[u8], escape_lf: bool) {
    if !escape_lf {
        out.extend_from_slice(bytes);
        return;
    }
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"\\n");
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msg: &str, framing: Option<Framing>) -> String {
        let mut out = b"prev".to_vec();
        out.extend_from_slice(msg.as_bytes());
        frame(&mut out, 4, framing);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn octet_counting_counts_bytes() {
        assert_eq!(
            framed("<14>1 - - - - - - hi", Some(Framing::OctetCounting)),
            "prev20 <14>1 - - - - - - hi"
        );
        assert_eq!(framed("ü\nx", Some(Framing::OctetCounting)), "prev4 ü\nx");
        let long = "x".repeat(12_345);
        assert_eq!(
            framed(&long, Some(Framing::OctetCounting)),
            format!("prev12345 {long}")
        );
        assert_eq!(framed("m", Some(Framing::Lf)), "prevm\n");
        assert_eq!(framed("m", None), "prevm");
    }

    #[test]
    fn lf_escaping() {
        let mut out = Vec::new();
        push_escaped(&mut out, b"a\nb\n\nc", true);
        assert_eq!(out, b"a\\nb\\n\\nc");
        out.clear();
        push_escaped(&mut out, b"a\nb", false);
        assert_eq!(out, b"a\nb");
    }
}
