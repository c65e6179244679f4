//! Configuration: the command line (every flag with an environment twin) and the fleet file.

pub mod cli;
pub mod fleet;

pub use cli::{
    AssistantCommand, BenchArgs, Cli, Command, DemoArgs, DemoServerArgs, PermissionCommand,
    PermissionTarget, ScaleFleetArgs, ServeArgs, UserCommand,
};
