//! A small RFC 5322 / MIME reader for the delivered messages, which checks
//! their syntax along the way.

/// One part of a multipart message, its body decoded.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's headers, unfolded.
    pub headers: Vec<(String, String)>,
    /// `type/subtype`, lower case.
    pub mime_type: String,
    /// The body after undoing its transfer encoding.
    pub body: String,
}

/// A delivered message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The message as delivered.
    pub raw: String,
    /// Top-level headers, unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// `type/subtype` of the message, lower case.
    pub mime_type: String,
    /// The leaf parts (the message itself if it is not multipart).
    pub parts: Vec<Part>,
    /// SMTP envelope recipients (empty for outbox files).
    pub envelope_to: Vec<String>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits a header block from a body; checks RFC 5322 header syntax.
fn split_entity(text: &str) -> Result<(Vec<(String, String)>, String), String> {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text, ""),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        if line.starts_with([' ', '\t']) {
            let last = headers
                .last_mut()
                .ok_or_else(|| format!("continuation line before any header: {line:?}"))?;
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            return Err(format!("bad header name: {name:?}"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok((headers, body.to_string()))
}

/// The value of `param` in a header such as `multipart/alternative; boundary="x"`.
fn header_param(value: &str, param: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn mime_type_of(headers: &[(String, String)]) -> String {
    header(headers, "Content-Type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "text/plain".to_string())
}

fn decode_quoted_printable(body: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'=' {
                let hex = line
                    .get(j + 1..j + 3)
                    .ok_or_else(|| format!("bad quoted-printable escape in {line:?}"))?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| format!("bad quoted-printable escape ={hex}"))?,
                );
                j += 3;
            } else {
                out.push(bytes[j]);
                j += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    String::from_utf8(out).map_err(|e| format!("quoted-printable body is not UTF-8: {e}"))
}

fn decode_body(headers: &[(String, String)], body: &str) -> Result<String, String> {
    let encoding = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    match encoding.as_str() {
        "7bit" | "8bit" | "binary" => Ok(body.to_string()),
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine;
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("bad base64 body: {e}"))?;
            String::from_utf8(bytes).map_err(|e| format!("base64 body is not UTF-8: {e}"))
        }
        other => Err(format!("unknown Content-Transfer-Encoding {other:?}")),
    }
}

fn leaf_parts(
    headers: Vec<(String, String)>,
    body: &str,
    out: &mut Vec<Part>,
) -> Result<(), String> {
    let mime_type = mime_type_of(&headers);
    if !mime_type.starts_with("multipart/") {
        let body = decode_body(&headers, body)?;
        out.push(Part {
            headers,
            mime_type,
            body,
        });
        return Ok(());
    }
    let content_type = header(&headers, "Content-Type").unwrap_or_default();
    let boundary = header_param(content_type, "boundary")
        .ok_or_else(|| format!("multipart without a boundary: {content_type:?}"))?;
    let delimiter = format!("--{boundary}");
    let mut sections = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut closed = false;
    for line in body.split('\n') {
        if line.trim_end() == delimiter {
            if let Some(section) = current.take() {
                sections.push(section.join("\n"));
            }
            current = Some(Vec::new());
        } else if line.trim_end() == format!("{delimiter}--") {
            if let Some(section) = current.take() {
                sections.push(section.join("\n"));
            }
            closed = true;
            break;
        } else if let Some(section) = current.as_mut() {
            section.push(line);
        }
    }
    if !closed {
        return Err(format!("multipart body never closes with {delimiter}--"));
    }
    if sections.is_empty() {
        return Err("multipart body without parts".into());
    }
    for section in sections {
        let (part_headers, part_body) = split_entity(&section)?;
        leaf_parts(part_headers, &part_body, out)?;
    }
    Ok(())
}

impl Mail {
    /// Reads an RFC 5322 message, checking its syntax along the way: CRLF
    /// line ends, lines of at most 998 characters, well-formed headers, the
    /// mandatory `Date` and `From`, and MIME structure.
    pub fn parse(raw: &str) -> Result<Mail, String> {
        for (i, line) in raw.split("\r\n").enumerate() {
            if line.contains('\n') || line.contains('\r') {
                return Err(format!("line {} has a bare CR or LF", i + 1));
            }
            if line.len() > 998 {
                return Err(format!("line {} is longer than 998 characters", i + 1));
            }
        }
        let text = raw.replace("\r\n", "\n");
        let (headers, body) = split_entity(&text)?;
        for required in ["Date", "From"] {
            if header(&headers, required).is_none() {
                return Err(format!("no {required} header"));
            }
        }
        let mime_type = mime_type_of(&headers);
        let mut parts = Vec::new();
        leaf_parts(headers.clone(), &body, &mut parts)?;
        Ok(Mail {
            raw: raw.to_string(),
            headers,
            mime_type,
            parts,
            envelope_to: Vec::new(),
        })
    }

    /// A top-level header, unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The `Subject`.
    pub fn subject(&self) -> &str {
        self.header("Subject").unwrap_or("")
    }

    /// The decoded body of the first part of type `mime_type`.
    pub fn part(&self, mime_type: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|p| p.mime_type == mime_type)
            .map(|p| p.body.as_str())
    }

    /// The plain-text part.
    pub fn text(&self) -> &str {
        self.part("text/plain")
            .unwrap_or_else(|| panic!("no text/plain part in:\n{}", self.raw))
    }

    /// The HTML part.
    pub fn html(&self) -> &str {
        self.part("text/html")
            .unwrap_or_else(|| panic!("no text/html part in:\n{}", self.raw))
    }

    /// The link `{app_url}{path}?token=…` of the plain-text part.
    pub fn link(&self, app_url: &str, path: &str) -> String {
        let prefix = format!("{app_url}{path}?token=");
        let text = self.text();
        let start = text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no link {prefix}… in the text part:\n{text}"));
        let token: String = text[start + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%'))
            .collect();
        assert!(!token.is_empty(), "empty token in {text}");
        format!("{prefix}{token}")
    }

    /// The token of the link `{app_url}{path}?token=…`.
    pub fn token(&self, app_url: &str, path: &str) -> String {
        let link = self.link(app_url, path);
        link.split_once("?token=").unwrap().1.to_string()
    }
}
