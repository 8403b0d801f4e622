//! What every command file uses.

pub(crate) use std::collections::HashMap;
pub(crate) use std::fs;
pub(crate) use std::io::{IsTerminal, Read, Write};
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::{Command as Process, Stdio};

pub(crate) use anyhow::{anyhow, bail, Context, Result};

pub(crate) use crate::client::cli::{self, Handoff, NymOptions};
pub(crate) use crate::client::ctx::*;
pub(crate) use crate::client::handoff::{self, Via};
pub(crate) use crate::client::store::{
    check_nym_name, normalize_address, notice_state, NymRecord, Store, UrlKey,
};
pub(crate) use crate::client::{fetch, mime, net, nntp, request};
pub(crate) use crate::openpgp::holder::{self as pgp, Passphrase};
pub(crate) use crate::openpgp::PgpCert as Cert;
