//! Which hosts scope-deck talks to: the API over HTTPS, WHIP/WHEP only on the seeds' allowlist of
//! Daydream/Livepeer domains. Plain HTTP is accepted only with the explicit local-development
//! opt-in and only on loopback hosts, so a misconfigured or hostile response cannot make the
//! controller stream a performer's camera to an arbitrary server.

use url::{Host, Url};

/// True for a bare domain name (`livepeer.com`): letters, digits, dots and dashes.
pub(crate) fn is_valid_domain(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.contains('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn parse(raw: &str) -> Result<Url, String> {
    let u = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if u.host().is_none() {
        return Err("URL has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("URL must not carry credentials".into());
    }
    Ok(u)
}

fn check_scheme(u: &Url, allow_local_dev: bool) -> Result<(), String> {
    match u.scheme() {
        "https" => Ok(()),
        "http" if allow_local_dev && is_loopback(u) => Ok(()),
        "http" if allow_local_dev => Err(format!(
            "plain HTTP is allowed only on loopback hosts, even with allow_local_dev (host `{}`)",
            u.host_str().unwrap_or("")
        )),
        "http" => Err("HTTPS required (plain HTTP only with allow_local_dev on loopback)".into()),
        other => Err(format!("scheme `{other}` is not https")),
    }
}

/// Checks the API base URL: HTTPS, or HTTP on loopback with the local-development opt-in.
pub(crate) fn check_api_url(raw: &str, allow_local_dev: bool) -> Result<Url, String> {
    let u = parse(raw)?;
    check_scheme(&u, allow_local_dev)?;
    Ok(u)
}

/// Checks a WHIP or WHEP URL from the server: HTTPS (HTTP on loopback with the opt-in), and a
/// host equal to, or a subdomain of, one of `allowed` (loopback counts as allowed only with the
/// opt-in). The error names the host and says how to allow it.
pub(crate) fn check_media_url(
    raw: &str,
    allowed: &[String],
    allow_local_dev: bool,
) -> Result<Url, String> {
    let u = parse(raw)?;
    check_scheme(&u, allow_local_dev)?;
    if allow_local_dev && is_loopback(&u) {
        return Ok(u);
    }
    let host = u
        .host_str()
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ok = allowed.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        host == d || host.ends_with(&format!(".{d}"))
    });
    if ok {
        Ok(u)
    } else {
        Err(format!(
            "host `{host}` is not on the allowlist ({}); add its base domain to [daydream] allowed_hosts if it is genuinely Daydream's",
            allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> Vec<String> {
        crate::transport::daydream::config::DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn allowlisted_https_hosts_and_subdomains_pass() {
        assert!(
            check_media_url(
                "https://ai.livepeer.com/live/video-to-video/x/whip",
                &seeds(),
                false
            )
            .is_ok()
        );
        assert!(check_media_url("https://daydream.live/whip", &seeds(), false).is_ok());
        assert!(check_media_url("https://a.b.lp-playback.studio/whep/1", &seeds(), false).is_ok());
    }

    #[test]
    fn lookalike_and_foreign_hosts_are_refused_with_the_host_named() {
        let e = check_media_url("https://evil-livepeer.com/whip", &seeds(), false).unwrap_err();
        assert!(e.contains("evil-livepeer.com"), "{e}");
        assert!(check_media_url("https://livepeer.com.evil.io/whip", &seeds(), false).is_err());
        assert!(check_media_url("https://user:pw@livepeer.com/whip", &seeds(), false).is_err());
    }

    #[test]
    fn http_needs_the_opt_in_and_a_loopback_host() {
        assert!(check_media_url("http://livepeer.com/whip", &seeds(), false).is_err());
        assert!(check_media_url("http://127.0.0.1:9/whip", &seeds(), false).is_err());
        assert!(check_media_url("http://127.0.0.1:9/whip", &seeds(), true).is_ok());
        assert!(check_media_url("http://localhost:9/whip", &seeds(), true).is_ok());
        // The opt-in does not open plain HTTP to the internet.
        assert!(check_media_url("http://livepeer.com/whip", &seeds(), true).is_err());
        assert!(check_api_url("http://api.daydream.live", true).is_err());
        assert!(check_api_url("https://api.daydream.live", false).is_ok());
        assert!(check_api_url("ftp://api.daydream.live", true).is_err());
    }

    #[test]
    fn domains_are_validated() {
        assert!(is_valid_domain("livepeer.com"));
        assert!(!is_valid_domain("https://livepeer.com"));
        assert!(!is_valid_domain("livepeer.com:443"));
        assert!(!is_valid_domain("localhost"));
    }
}
