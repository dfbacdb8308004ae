use super::{find_string_stop, string_len};

#[test]
fn string_stops_find_the_first_stop_byte() {
    for len in 0..20 {
        for stop in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff] {
            for at in 0..=len {
                let mut bytes = vec![b'a'; len];
                // Noise after the first stop must not move it.
                bytes.extend([b'\\', 0x01, b'"', 0xc3]);
                if at < len {
                    bytes[at] = stop;
                }
                assert_eq!(find_string_stop(&bytes), Some(at), "{len} {stop} {at}");
            }
        }
    }
    for byte in 0..=255u8 {
        let mut bytes = [b' '; 8];
        bytes[3] = byte;
        let stop = !(0x20..0x80).contains(&byte) || byte == b'"' || byte == b'\\';
        let expected = stop.then_some(3);
        assert_eq!(find_string_stop(&bytes), expected, "{byte}");
    }
    assert_eq!(find_string_stop(b"abcdefghij"), None);
}

#[test]
fn string_len_stops_at_the_closing_quote_only() {
    assert_eq!(string_len(b"abc\"rest"), Some((3, true)));
    assert_eq!(string_len("caf\u{e9}\"".as_bytes()), Some((5, false)));
    assert_eq!(string_len(b"a\\\"b\""), None, "an escape");
    assert_eq!(string_len(b"a\tb\""), None, "a control character");
    assert_eq!(
        string_len("\u{e9}\n\"".as_bytes()),
        None,
        "a control character after non-ASCII"
    );
    assert_eq!(string_len(b"no quote"), None);
}
