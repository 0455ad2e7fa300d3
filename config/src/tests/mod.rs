//! Tests that go through the public entry points: every validation rule,
//! the config files in the repository, codegen and the JSON Schema. Unit
//! tests of single modules live next to them.

mod audio;
mod boards;
mod codegen;
mod display;
mod files;
mod fixture;
mod rules;
mod schema;
mod touch;
