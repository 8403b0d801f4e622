//! How a request ended: one name per outcome, printed in the log line as
//! `outcome=<name>`. Decisions compare variants, never these strings.

use super::Undecryptable;

macro_rules! outcomes {
    ($($variant:ident => $name:literal,)*) => {
        /// Every way a delivery can end (the exit code is 0 for all of them).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Outcome { $($variant,)* }

        impl Outcome {
            pub const ALL: &'static [Outcome] = &[$(Outcome::$variant,)*];
            /// The fixed word for the log line.
            pub fn as_str(self) -> &'static str {
                match self { $(Outcome::$variant => $name,)* }
            }
        }
    };
}

outcomes! {
    // Decryption and signatures.
    NoPgpMessage => "no_pgp_message",
    NotForServerKey => "not_for_server_key",
    MalformedPgp => "malformed_pgp",
    PlaintextTooLarge => "plaintext_too_large",
    Unsigned => "unsigned",
    UnsignedWithoutKey => "unsigned_without_key",
    BadSignature => "bad_signature",
    SignerNotANym => "signer_not_a_nym",
    UnknownSignerDropped => "unknown_signer_dropped",
    HeldUnknownSigner => "held_unknown_signer",
    HoldFull => "hold_full_dropped",
    // The gate of signed requests.
    NymDisabledOrExpired => "nym_disabled_or_expired",
    ReplayedSignature => "replayed_signature",
    SignedForSomeoneElse => "signed_for_someone_else",
    SignatureUndated => "signature_undated",
    SignatureTooOld => "signature_too_old",
    SignatureFromFuture => "signature_from_future",
    // Recording.
    DuplicateDelivery => "duplicate_delivery",
    NymGone => "nym_gone",
    // Creation.
    MalformedKeyBlock => "malformed_key_block",
    NoKeyInBlock => "no_key_in_block",
    MoreThanOneKey => "more_than_one_key",
    KeyInvalid => "key_invalid",
    KeyTooLarge => "key_too_large",
    KeyRevoked => "key_revoked",
    KeyExpired => "key_expired",
    KeyCannotEncrypt => "key_cannot_encrypt",
    KeyCannotSign => "key_cannot_sign",
    NoHostedUserId => "no_hosted_user_id",
    TwoHostedUserIds => "two_hosted_user_ids",
    RefusedReserved => "refused_reserved",
    RefusedInvalidName => "refused_invalid_name",
    RefusedTaken => "refused_taken",
    KeyAlreadyUsed => "key_already_used",
    DuplicateCopy => "duplicate_copy",
    KeyRefreshed => "key_refreshed",
    Created => "created",
    // Reconfiguration.
    Deleted => "deleted",
    Status => "status",
    Changed => "changed",
    // Config: requests and confirmation (REPLY-BLOCKS.md 5, 6.3).
    Refused => "refused",
    NoSuchNym => "no_such_nym",
    Confirmed => "confirmed",
    ConfirmUnknown => "confirm_unknown",
    ConfirmExpired => "confirm_expired",
    ConfirmIgnoredAuto => "confirm_ignored_auto",
    // Mail to a nym.
    Posted => "posted",
    // Mail to a reply-block nym that its 6.2 selection sent nowhere.
    NoBlockSelected => "no_block_selected",
    // The daily unit quota disabled the nym (REPLY-BLOCKS.md 7.3): the
    // shell ends the delivery with 69 once this is committed.
    DisabledByQuota => "disabled_by_quota",
    // Mail to a nym with `disable` (7.5): one unit recorded, then 69.
    DisabledRefusal => "disabled_refusal",
    // send@.
    NoRecipient => "no_recipient",
    WrongFormat => "wrong_format",
    FromNotSigner => "from_not_signer",
    SendDisabled => "send_disabled",
    AllRecipientsBlocked => "all_recipients_blocked",
    DailyLimit => "daily_limit",
    TooManyRecipients => "too_many_recipients",
    Sent => "sent",
    SentSomeBlocked => "sent_some_blocked",
    // postmaster@ and abuse@.
    Forwarded => "forwarded",
    // url@.
    NoKey => "no_key",
    NoUrl => "no_url",
    UrlQueued => "queued",
    UrlRateLimited => "url_rate_limited",
    Fetched => "fetched",
    SomeFailed => "some_failed",
    AllFailed => "all_failed",
    // The Type I remailer (REPLY-BLOCKS.md section 10).
    Remailed => "remailed",
    RemailerPosted => "remailer_posted",
    NullDiscarded => "null_discarded",
    PgpOnlyDropped => "pgp_only_dropped",
    TooManyLayers => "too_many_layers",
    LayerWithoutMessage => "layer_without_message",
    LayerUndecryptable => "layer_undecryptable",
    UnsupportedDirective => "unsupported_directive",
    NoDestination => "no_destination",
    MixedDestinations => "mixed_destinations",
    BadRecipient => "bad_recipient",
    RemailTooManyRecipients => "too_many_remail_recipients",
    DestinationBlocked => "destination_blocked",
    MiddlemanRefused => "middleman_refused",
    PostingOff => "posting_off",
    GroupBlocked => "group_blocked",
    BadNewsgroups => "bad_newsgroups",
    PastedFieldDropped => "pasted_field_dropped",
    EncryptKeyFailed => "encrypt_key_failed",
    RemailerRequestDropped => "remailer_request_dropped",
    // Autoresponders (section 11).
    Answered => "answered",
    ReplySuppressed => "reply_suppressed",
    ReplyLimited => "reply_limited",
    Discarded => "discarded",
}

impl From<Undecryptable> for Outcome {
    /// One mapping for every service.
    fn from(u: Undecryptable) -> Self {
        match u {
            Undecryptable::NoMessage => Outcome::NoPgpMessage,
            Undecryptable::NotForUs => Outcome::NotForServerKey,
            Undecryptable::Malformed => Outcome::MalformedPgp,
            Undecryptable::TooLarge => Outcome::PlaintextTooLarge,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_are_distinct_log_words() {
        let mut seen = std::collections::HashSet::new();
        for o in Outcome::ALL {
            let s = o.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{s}");
        }
    }

    #[test]
    fn undecryptable_maps_the_same_for_every_service() {
        assert_eq!(Outcome::from(Undecryptable::NotForUs), Outcome::NotForServerKey);
        assert_eq!(Outcome::from(Undecryptable::TooLarge), Outcome::PlaintextTooLarge);
    }
}
