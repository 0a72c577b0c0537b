//! The WSGI (PEP 3333) core. It knows nothing about Apache: a request arrives
//! as CGI variables plus a [`Backend`] that reads the body and writes the
//! response, so embedded mode and daemon mode run the same code.

mod auth;
mod describe;
mod environ;
mod events;
mod file_wrapper;
mod gateway;
mod input;
mod log_stream;
mod metrics;
mod response;
mod runner;
mod start_response;

#[cfg(test)]
pub use crate::sys::python::in_sub_interpreter;
pub use auth::{
    allow_access, auth_environ, check_password, get_realm_hash, groups_for_user, header_var,
    AuthFailure, PasswordCheck, RealmHash,
};
pub use describe::{format_exception, log_exception, log_script_error};
pub use environ::{version_tuple, EnvironSpec, WsgiFlags};
pub use events::{active_requests, note_subscriber, publish_process_stopping, request_data};
pub use file_wrapper::FileWrapper;
pub use gateway::{Backend, BodyError, LogLevel, WriteError};
pub use input::Input;
pub use log_stream::{
    current_application_group, flush_thread_streams, install_stdio, log_for_current_request,
    set_current_application_group, set_current_request,
};
pub use metrics::{mark_process_start, memory, process_metrics};
pub use response::Outcome;
pub use runner::{run_request, LoadError, RequestScope};
