//! What a stored password hash says of itself: its format, whether it is
//! weaker than the policy (re-hash), and whether its cost parameters are
//! within the bounds of SPEC §7 (checked before any hashing work).

use argon2::Params;
use argon2::password_hash::phc::PasswordHash;

use super::{HashError, HashPolicy};
use crate::config::HasherKind;

/// The largest argon2 memory cost of a stored or imported hash, in KiB
/// (256 MiB; SPEC §7).
pub const ARGON2_MAX_MEMORY_KIB: u32 = 262_144;
/// The largest argon2 time cost (iterations) of a stored or imported hash.
pub const ARGON2_MAX_TIME: u32 = 16;
/// The largest argon2 parallelism (lanes) of a stored or imported hash.
pub const ARGON2_MAX_PARALLELISM: u32 = 16;
/// The largest bcrypt cost of a stored or imported hash, and of new ones
/// (`BCRYPT_ROUNDS` is checked against it when the settings are read).
pub use crate::config::BCRYPT_MAX_COST;

/// Whether `hash` is in another format than `policy` asks for, or weaker:
/// such a hash is replaced at the next successful login.
pub fn needs_rehash(hash: &str, policy: HashPolicy) -> bool {
    match policy.kind {
        HasherKind::Bcrypt => match bcrypt_cost(hash) {
            Some(cost) => cost < policy.bcrypt_rounds,
            None => true,
        },
        HasherKind::Argon2id => {
            let Ok(parsed) = PasswordHash::new(hash) else {
                return true;
            };
            if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
                return true;
            }
            match Params::try_from(&parsed) {
                Ok(p) => {
                    p.m_cost() < Params::DEFAULT_M_COST
                        || p.t_cost() < Params::DEFAULT_T_COST
                        || p.p_cost() < Params::DEFAULT_P_COST
                }
                Err(_) => true,
            }
        }
    }
}

/// Checks the cost parameters of `hash` against the bounds of SPEC §7
/// ([`ARGON2_MAX_MEMORY_KIB`], [`ARGON2_MAX_TIME`],
/// [`ARGON2_MAX_PARALLELISM`], [`BCRYPT_MAX_COST`]), reading them only: a
/// hash that is not argon2 or bcrypt passes (it fails elsewhere as unknown).
pub fn check_bounds(hash: &str) -> Result<(), HashError> {
    if let Some(cost) = bcrypt_cost(hash) {
        if cost > BCRYPT_MAX_COST {
            return Err(HashError::OutOfBounds(format!("bcrypt cost {cost}")));
        }
        return Ok(());
    }
    if !hash.starts_with("$argon2") {
        return Ok(());
    }
    let parsed = PasswordHash::new(hash).map_err(|_| HashError::UnknownFormat)?;
    let params = Params::try_from(&parsed).map_err(|_| HashError::UnknownFormat)?;
    check_argon2_bounds(&params)
}

/// Checks argon2 `params` against the bounds of SPEC §7.
pub(super) fn check_argon2_bounds(params: &Params) -> Result<(), HashError> {
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > ARGON2_MAX_MEMORY_KIB || t > ARGON2_MAX_TIME || p > ARGON2_MAX_PARALLELISM {
        return Err(HashError::OutOfBounds(format!(
            "argon2 m={m}, t={t}, p={p}"
        )));
    }
    Ok(())
}

/// Whether `hash` is a hash format that [`verify_password`] understands.
/// Its parameters may still be out of bounds ([`check_bounds`]).
pub fn is_known_hash_format(hash: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt_cost(hash).is_some() && hash.len() == 60;
    }
    hash.starts_with("$argon2") && PasswordHash::new(hash).is_ok()
}

pub(crate) fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

fn bcrypt_cost(hash: &str) -> Option<u32> {
    if !is_bcrypt(hash) {
        return None;
    }
    hash.get(4..6)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::{HashMemory, verify_password, verify_password_in};
    use super::*;

    /// An argon2id PHC string with `params` (a made-up salt and output).
    fn argon2_with(params: &str) -> String {
        format!(
            "$argon2id$v=19${params}$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        )
    }

    #[test]
    fn hash_parameters_are_bounded() {
        for inside in ["m=262144,t=16,p=16", "m=19456,t=2,p=1"] {
            check_bounds(&argon2_with(inside)).unwrap();
        }
        check_bounds(&format!("$2b$16${}", "a".repeat(53))).unwrap();
        let bcrypt_17 = format!("$2b$17${}", &"a".repeat(53));
        for outside in [
            argon2_with("m=262145,t=1,p=1"),
            argon2_with("m=19456,t=17,p=1"),
            argon2_with("m=19456,t=2,p=17"),
            bcrypt_17,
        ] {
            let refused = check_bounds(&outside).unwrap_err();
            assert!(matches!(refused, HashError::OutOfBounds(_)), "{outside}");
            let message = refused.to_string();
            assert!(!message.contains("c29tZXNhbHRz"), "no salt: {message}");
            assert!(matches!(
                verify_password("x", &outside),
                Err(HashError::OutOfBounds(_))
            ));
            let mut memory = HashMemory::default();
            assert!(matches!(
                verify_password_in("x", &outside, &mut memory),
                Err(HashError::OutOfBounds(_))
            ));
            assert!(memory.0.is_empty(), "{outside}: memory was allocated");
        }
    }
}
