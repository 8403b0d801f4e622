//! How a payload reaches a nym: the cryptography and article building that
//! turn a handler's [`Post`]s into outbox items. Each way of reaching a nym
//! is its own file (today: [`aam`], the shared mailbox).

pub mod aam;
pub mod blocks;
pub mod type1;
pub mod url;

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::{Addressee, Post, Wrapping};
use crate::openpgp::ServerKey;
use crate::protocol::article::notice;
use crate::store::{Delayed, OutItem};

/// Items ready for the outbox, and the runs of the Type I engine that
/// posts through reply blocks need ([`blocks`]).
pub struct Rendered {
    pub items: Vec<OutItem>,
    pub blocks: Vec<blocks::BlockMessage>,
}

impl Rendered {
    /// Everything for the outbox: the items, and what the Type I engine
    /// makes of the block messages (each with its Latent-Time). What the
    /// runs came to is returned for [`blocks::committed`].
    pub fn into_items(self, cfg: &Config) -> Result<(Vec<Delayed>, blocks::Runs), Failure> {
        let mut items: Vec<Delayed> = self.items.into_iter().map(Delayed::from).collect();
        let mut runs = blocks::run_engine(cfg, self.blocks)?;
        items.append(&mut runs.items);
        Ok((items, runs))
    }
}

/// Render every post except [`Post::Inbound`], which the delivery shell
/// streams itself.
pub fn render(cfg: &Config, server: &mut ServerKey, posts: Vec<Post>) -> Result<Rendered, Failure> {
    let mut out = Rendered { items: Vec::with_capacity(posts.len()), blocks: Vec::new() };
    for p in posts {
        match p {
            Post::Notice { to, from, address, subject, text } => {
                let payload = notice(&from, &address, &subject, &text);
                let service = from.split('@').next().unwrap_or("config").to_string();
                let (cert, wrap) = match &to {
                    Addressee::Nym(n) => (&n.cert, Wrapping::of(n)),
                    Addressee::Key { cert, wrap } => (&**cert, wrap.clone()),
                };
                out.items.push(aam::article_for(
                    cfg,
                    server,
                    cert,
                    &wrap,
                    &mut &payload[..],
                    payload.len(),
                    Some(&service),
                )?);
            }
            Post::Item(i) => out.items.push(i),
            p @ Post::ViaBlocks { .. } => out.blocks.extend(blocks::render(server, p)?),
            // Streamed by the delivery shell; never rendered from memory.
            Post::Inbound(_) => return Err(Failure::Temp(anyhow::anyhow!("inbound post outside deliver"))),
        }
    }
    Ok(out)
}
