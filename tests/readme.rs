//! The README's promises that can be checked without a server: its
//! embedding snippet is `examples/profile.rs`, word for word.

/// The first ```rust block after `## Embedding the library`.
fn embedding_snippet(readme: &str) -> &str {
    let section = readme
        .split_once("## Embedding the library")
        .expect("README has an embedding section")
        .1;
    let block = section
        .split_once("```rust\n")
        .expect("the embedding section has a rust block")
        .1;
    block
        .split_once("\n```")
        .expect("the rust block is closed")
        .0
}

#[test]
fn the_embedding_snippet_is_the_profile_example() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/profile.rs");
    let code: Vec<&str> = example
        .lines()
        .filter(|l| !l.starts_with("//!"))
        .skip_while(|l| l.is_empty())
        .collect();
    let snippet: Vec<&str> = embedding_snippet(readme).lines().collect();
    assert_eq!(
        snippet, code,
        "README's embedding snippet and examples/profile.rs differ: copy the example (without its //! header) into the README"
    );
}
