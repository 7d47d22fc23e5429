//! [`SrtpKey`]: one direction's master key and salt, with its profile.

use super::{SrtpKeyError, SrtpProfile};

/// One direction's master key material: profile, master key and master salt.
///
/// `Debug` never prints the key material.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    /// Protection profile.
    pub profile: SrtpProfile,
    /// Master key ([`SrtpProfile::key_len`] bytes).
    pub master_key: Vec<u8>,
    /// Master salt ([`SrtpProfile::salt_len`] bytes).
    pub master_salt: Vec<u8>,
}

impl SrtpKey {
    /// A key from its parts; checks the lengths against the profile.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, SrtpKeyError> {
        let k = Self {
            profile,
            master_key: key.to_vec(),
            master_salt: salt.to_vec(),
        };
        k.check()?;
        Ok(k)
    }

    /// A key from master key ‖ master salt (the SDES / signaling form).
    pub fn from_key_and_salt(
        profile: SrtpProfile,
        key_and_salt: &[u8],
    ) -> Result<Self, SrtpKeyError> {
        let want = profile.key_and_salt_len();
        if key_and_salt.len() != want {
            // Report it as the part that is off: a short input is a short salt
            // only when the key is whole.
            return Err(if key_and_salt.len() < profile.key_len() {
                SrtpKeyError::KeyLength {
                    profile,
                    want: profile.key_len(),
                    got: key_and_salt.len(),
                }
            } else {
                SrtpKeyError::SaltLength {
                    profile,
                    want: profile.salt_len(),
                    got: key_and_salt.len() - profile.key_len(),
                }
            });
        }
        let (k, s) = key_and_salt.split_at(profile.key_len());
        Self::new(profile, k, s)
    }

    /// Master key ‖ master salt.
    pub fn key_and_salt(&self) -> Vec<u8> {
        let mut v = self.master_key.clone();
        v.extend_from_slice(&self.master_salt);
        v
    }

    /// Checks the key and salt lengths against the profile.
    pub fn check(&self) -> Result<(), SrtpKeyError> {
        let p = self.profile;
        if self.master_key.len() != p.key_len() {
            return Err(SrtpKeyError::KeyLength {
                profile: p,
                want: p.key_len(),
                got: self.master_key.len(),
            });
        }
        if self.master_salt.len() != p.salt_len() {
            return Err(SrtpKeyError::SaltLength {
                profile: p,
                want: p.salt_len(),
                got: self.master_salt.len(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SrtpKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_and_debug_hides_the_key() {
        let p = SrtpProfile::Aes128CmHmacSha1_80;
        let k = SrtpKey::from_key_and_salt(p, &[0xab; 30]).unwrap();
        assert_eq!(k.key_and_salt(), vec![0xab; 30]);
        let dbg = format!("{k:?}");
        assert!(
            dbg.contains("Aes128CmHmacSha1_80") && !dbg.contains("171"),
            "{dbg}"
        );
        assert!(matches!(
            SrtpKey::from_key_and_salt(p, &[0; 28]),
            Err(SrtpKeyError::SaltLength {
                want: 14,
                got: 12,
                ..
            })
        ));
        assert!(matches!(
            SrtpKey::new(p, &[0; 15], &[0; 14]),
            Err(SrtpKeyError::KeyLength {
                want: 16,
                got: 15,
                ..
            })
        ));
        let g = SrtpProfile::AeadAes128Gcm;
        assert!(SrtpKey::from_key_and_salt(g, &[0; 28]).is_ok());
        assert!(SrtpKey::new(g, &[0; 16], &[0; 14]).is_err());
    }
}
