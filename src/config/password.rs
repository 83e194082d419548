//! Password settings: the hasher for new hashes, the bcrypt cost, the minimum
//! length, and the pool of hashing threads with its queue.

use super::source::Source;
use super::{ConfigError, HasherKind, PasswordConfig};

/// The largest bcrypt cost of a stored or imported hash, and of new ones
/// (SPEC §7): the settings own it so that reading `BCRYPT_ROUNDS` needs
/// nothing from the hashing code above them.
pub const BCRYPT_MAX_COST: u32 = 16;

/// Hashes one caller may have waiting or running at once when
/// `HASH_QUEUE_PER_CALLER` is not set: a sixteenth of the smallest queue.
pub const DEFAULT_PER_CALLER: usize = 4;

/// `PASSWORD_HASHER`, `BCRYPT_ROUNDS`, `PASSWORD_MIN_LENGTH`, `HASH_WORKERS`,
/// `HASH_QUEUE` and `HASH_QUEUE_PER_CALLER`.
pub(super) fn read(src: &Source<'_>) -> Result<PasswordConfig, ConfigError> {
    let hasher = match src.get("PASSWORD_HASHER").map(|v| v.to_ascii_lowercase()) {
        None => HasherKind::Argon2id,
        Some(v) if v == "argon2id" || v == "argon2" => HasherKind::Argon2id,
        Some(v) if v == "bcrypt" => HasherKind::Bcrypt,
        Some(v) => {
            return Err(ConfigError::new(
                "PASSWORD_HASHER",
                format!("expected argon2id or bcrypt, got {v:?}"),
            ));
        }
    };
    let bcrypt_rounds: u32 = src.parse("BCRYPT_ROUNDS", 12, "a whole number")?;
    if !(4..=BCRYPT_MAX_COST).contains(&bcrypt_rounds) {
        return Err(ConfigError::new(
            "BCRYPT_ROUNDS",
            format!("must be between 4 and {}", BCRYPT_MAX_COST),
        ));
    }
    let min_length: usize = src.parse("PASSWORD_MIN_LENGTH", 8, "a whole number")?;
    if !(1..=128).contains(&min_length) {
        return Err(ConfigError::new(
            "PASSWORD_MIN_LENGTH",
            "must be between 1 and 128",
        ));
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = src.positive("HASH_WORKERS", cores as u64)? as usize;
    let queue_capacity = src.parse("HASH_QUEUE", 128usize, "a whole number")?;
    if queue_capacity < 64 {
        return Err(ConfigError::new("HASH_QUEUE", "must be at least 64"));
    }
    let per_caller = src.positive("HASH_QUEUE_PER_CALLER", DEFAULT_PER_CALLER as u64)? as usize;
    if per_caller > queue_capacity {
        return Err(ConfigError::new(
            "HASH_QUEUE_PER_CALLER",
            "must not be more than HASH_QUEUE",
        ));
    }
    Ok(PasswordConfig {
        hasher,
        bcrypt_rounds,
        min_length,
        queue_capacity,
        workers,
        per_caller,
    })
}
