//! The default root certificates: the platform's store, the bundled Mozilla set, or the
//! first with the second as fallback.

use rustls::RootCertStore;

use crate::TlsError;

/// Which root certificates to trust when no CA is given, or besides the CAs given when set
/// explicitly with [`TlsOptions::with_default_roots`](crate::TlsOptions::with_default_roots).
///
/// The platform's store is read with `rustls-native-certs` (on Linux the OpenSSL locations
/// such as `/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`; the keychain on macOS; the
/// system store on Windows). The bundled set is Mozilla's, compiled in by `webpki-roots`; it
/// is as recent as the `webpki-roots` version this crate was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DefaultRoots {
    /// The platform's store if at least one certificate loads from it, else the bundled set.
    /// The default: it follows the administrator's choices and still works in a bare
    /// container without a CA bundle.
    #[default]
    PlatformOrBundled,
    /// Only the platform's store. Building fails with [`TlsError::NoPlatformRoots`] when no
    /// certificate loads from it.
    Platform,
    /// Only the bundled Mozilla set, whatever the platform has.
    Bundled,
}

impl DefaultRoots {
    /// Adds these roots to `store`; returns what was added, for `Debug`.
    pub(crate) fn load_into(self, store: &mut RootCertStore) -> Result<String, TlsError> {
        match self {
            Self::Bundled => Ok(add_bundled(store)),
            Self::Platform => {
                add_platform(store).map_err(|problems| TlsError::NoPlatformRoots { problems })
            }
            Self::PlatformOrBundled => {
                Ok(add_platform(store).unwrap_or_else(|_| add_bundled(store)))
            }
        }
    }
}

fn add_bundled(store: &mut RootCertStore) -> String {
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    format!(
        "bundled webpki-roots ({} certificates)",
        webpki_roots::TLS_SERVER_ROOTS.len()
    )
}

/// Adds every certificate of the platform's store that parses; fails, with what went wrong,
/// when none does.
fn add_platform(store: &mut RootCertStore) -> Result<String, Vec<String>> {
    let loaded = rustls_native_certs::load_native_certs();
    let (added, ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let mut problems: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        if ignored > 0 {
            problems.push(format!("{ignored} certificates could not be parsed"));
        }
        if problems.is_empty() {
            problems.push("the store is empty".to_owned());
        }
        return Err(problems);
    }
    Ok(format!("platform store ({added} certificates)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_set_is_not_empty() {
        let mut store = RootCertStore::empty();
        let loaded = DefaultRoots::Bundled.load_into(&mut store).unwrap();
        assert!(store.len() > 100, "{}", store.len());
        assert!(loaded.starts_with("bundled webpki-roots"));
    }

    #[test]
    fn the_default_always_yields_roots() {
        let mut store = RootCertStore::empty();
        let loaded = DefaultRoots::default().load_into(&mut store).unwrap();
        assert!(!store.is_empty(), "{loaded}");
    }
}
