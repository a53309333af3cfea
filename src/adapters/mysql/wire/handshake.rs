//! Connection set-up: the server's greeting, TLS when configured, and the login, with
//! `caching_sha2_password` (MySQL's default) or `mysql_native_password`.
//!
//! `caching_sha2_password` logs in with a scramble when the server has the account's
//! password cached; otherwise it asks for the password itself, which is sent in clear over
//! TLS and encrypted with the server's RSA key without it, as the driver does.

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse, SslRequest,
};
use mysql_common::proto::{MyDeserialize, MySerialize};
use mysql_common::scramble::{scramble_native, scramble_sha256};
use tokio::net::TcpStream;

use super::conn::{Stream, WireConn};
use super::frame::error_packet;
use super::tls::connector;
use super::{ClientTls, WireError, WireTarget};

/// What the client asks for; the server's greeting decides the rest.
const WANTED: CapabilityFlags = CapabilityFlags::CLIENT_LONG_PASSWORD
    .union(CapabilityFlags::CLIENT_LONG_FLAG)
    .union(CapabilityFlags::CLIENT_PROTOCOL_41)
    .union(CapabilityFlags::CLIENT_TRANSACTIONS)
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
    .union(CapabilityFlags::CLIENT_DEPRECATE_EOF);

/// Without these the server speaks a protocol older than this client reads.
const REQUIRED: CapabilityFlags = CapabilityFlags::CLIENT_PROTOCOL_41
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH);

/// The largest packet we say we accept (the protocol's own ceiling).
const MAX_PACKET: u32 = 1 << 30;
/// The collation asked for at login; the dump sets its session's with `SET NAMES`.
const UTF8MB4_GENERAL_CI: u8 = 45;

/// `caching_sha2_password`'s one-byte messages inside an auth-more-data packet.
const FAST_AUTH_DONE: u8 = 0x03;
const FULL_AUTH_NEEDED: u8 = 0x04;
const REQUEST_PUBLIC_KEY: u8 = 0x02;

const AUTH_MORE_DATA: u8 = 0x01;
const AUTH_SWITCH: u8 = 0xfe;
const OK: u8 = 0x00;
const ERR: u8 = 0xff;

/// Connects, negotiates TLS if configured and logs in.
pub(super) async fn connect(target: &WireTarget<'_>) -> Result<WireConn, WireError> {
    let tcp = TcpStream::connect((target.host, target.port)).await?;
    tcp.set_nodelay(true)?;
    login(Box::new(tcp), target).await
}

/// The handshake on an open socket.
async fn login(stream: Box<dyn Stream>, target: &WireTarget<'_>) -> Result<WireConn, WireError> {
    let mut conn = WireConn::new(stream);
    let greeting = conn.read_packet().await?;
    if greeting.first() == Some(&ERR) {
        return Err(WireError::Server(error_packet(&greeting)?));
    }
    // The parser's arithmetic on the greeting's lengths overflows (a panic in debug
    // builds) on some hostile greetings: a greeting must fail the login, never the process.
    let hello = std::panic::catch_unwind(|| {
        HandshakePacket::deserialize((), &mut ParseBuf(&greeting)).map(HandshakePacket::into_owned)
    })
    .map_err(|_| WireError::Handshake("unreadable server greeting".to_owned()))?
    .map_err(|e| WireError::Handshake(format!("unreadable server greeting: {e}")))?;
    let offered = hello.capabilities();
    if !offered.contains(REQUIRED) {
        return Err(WireError::Handshake(format!(
            "the server does not offer {:?}",
            REQUIRED.difference(offered)
        )));
    }
    let mut capabilities = WANTED.intersection(offered);
    if let ClientTls::Required { ca } = target.tls {
        if !offered.contains(CapabilityFlags::CLIENT_SSL) {
            return Err(WireError::Tls("the server does not offer TLS".to_owned()));
        }
        capabilities.insert(CapabilityFlags::CLIENT_SSL);
        let mut request = Vec::new();
        SslRequest::new(capabilities, MAX_PACKET, UTF8MB4_GENERAL_CI).serialize(&mut request);
        conn.write_packet(&request).await?;
        let (stream, seq, io_timeout) = conn.into_parts()?;
        let (connector, name) = connector(ca.as_deref(), target.host)?;
        let secured = connector
            .connect(name, stream)
            .await
            .map_err(|e| WireError::Tls(e.to_string()))?;
        conn = WireConn::resume(Box::new(secured), seq, io_timeout);
    }
    conn.set_deprecate_eof(capabilities.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    let mut login = Login {
        password: target.credentials.password.as_bytes(),
        tls: capabilities.contains(CapabilityFlags::CLIENT_SSL),
        plugin: hello
            .auth_plugin()
            .map_or(AuthPlugin::CachingSha2Password, AuthPlugin::into_owned),
        nonce: hello.nonce(),
    };
    let response = HandshakeResponse::new(
        Some(scramble(&login.plugin, login.password, &login.nonce)?),
        hello.server_version_parsed().unwrap_or((8, 0, 0)),
        Some(target.credentials.user.as_bytes()),
        None::<&[u8]>,
        Some(login.plugin.clone()),
        capabilities,
        None,
        MAX_PACKET,
    );
    let mut packet = Vec::new();
    response.serialize(&mut packet);
    conn.write_packet(&packet).await?;
    login.exchange(&mut conn).await?;
    Ok(conn)
}

/// The state of a login after the handshake response went out.
struct Login<'a> {
    password: &'a [u8],
    tls: bool,
    plugin: AuthPlugin<'static>,
    nonce: Vec<u8>,
}

impl Login<'_> {
    /// Answers the server until it accepts or refuses the login.
    async fn exchange(&mut self, conn: &mut WireConn) -> Result<(), WireError> {
        loop {
            let reply = conn.read_packet().await?;
            match reply.first() {
                Some(&OK) => return Ok(()),
                Some(&ERR) => return Err(WireError::Server(error_packet(&reply)?)),
                Some(&AUTH_SWITCH) => {
                    let switch = AuthSwitchRequest::deserialize((), &mut ParseBuf(&reply))
                        .map_err(|e| {
                            WireError::Handshake(format!("unreadable auth switch: {e}"))
                        })?;
                    self.plugin = switch.auth_plugin().into_owned();
                    self.nonce = switch.plugin_data().to_vec();
                    if self.nonce.last() == Some(&0) {
                        self.nonce.pop();
                    }
                    let data = scramble(&self.plugin, self.password, &self.nonce)?;
                    conn.write_packet(&data).await?;
                }
                Some(&AUTH_MORE_DATA) if self.plugin == AuthPlugin::CachingSha2Password => {
                    self.caching_sha2_step(conn, reply.get(1).copied()).await?;
                }
                _ => {
                    return Err(WireError::Handshake(
                        "unexpected packet during login".to_owned(),
                    ));
                }
            }
        }
    }

    /// `caching_sha2_password`'s answer to the scramble: accepted from its cache, or the
    /// password itself is wanted.
    async fn caching_sha2_step(
        &self,
        conn: &mut WireConn,
        message: Option<u8>,
    ) -> Result<(), WireError> {
        match message {
            Some(FAST_AUTH_DONE) => Ok(()),
            Some(FULL_AUTH_NEEDED) if self.tls => {
                let mut clear = self.password.to_vec();
                clear.push(0);
                conn.write_packet(&clear).await
            }
            Some(FULL_AUTH_NEEDED) => {
                conn.write_packet(&[REQUEST_PUBLIC_KEY]).await?;
                let key = conn.read_packet().await?;
                let Some((&AUTH_MORE_DATA, pem)) = key.split_first() else {
                    return Err(WireError::Handshake(
                        "the server sent no public key".to_owned(),
                    ));
                };
                let encrypted = encrypt_password(self.password, &self.nonce, pem)?;
                conn.write_packet(&encrypted).await
            }
            _ => Err(WireError::Handshake(
                "unexpected caching_sha2_password message".to_owned(),
            )),
        }
    }
}

/// The login scramble of `password` for `plugin` (empty for an empty password).
fn scramble(plugin: &AuthPlugin<'_>, password: &[u8], nonce: &[u8]) -> Result<Vec<u8>, WireError> {
    if password.is_empty() {
        return Ok(Vec::new());
    }
    let data = match plugin {
        AuthPlugin::CachingSha2Password => scramble_sha256(nonce, password).map(|d| d.to_vec()),
        AuthPlugin::MysqlNativePassword => scramble_native(nonce, password).map(|d| d.to_vec()),
        other => {
            return Err(WireError::Handshake(format!(
                "authentication plugin {} is not supported here",
                String::from_utf8_lossy(other.as_bytes())
            )));
        }
    };
    data.ok_or_else(|| WireError::Handshake("cannot scramble the password".to_owned()))
}

/// The password (NUL-terminated, XORed with the nonce) encrypted with the server's RSA
/// key, for a full `caching_sha2_password` login without TLS.
fn encrypt_password(password: &[u8], nonce: &[u8], pem: &[u8]) -> Result<Vec<u8>, WireError> {
    if nonce.is_empty() {
        return Err(WireError::Handshake(
            "the server sent an empty nonce".to_owned(),
        ));
    }
    let mut clear = password.to_vec();
    clear.push(0);
    for (byte, key) in clear.iter_mut().zip(nonce.iter().cycle()) {
        *byte ^= key;
    }
    // The driver's RSA code panics on a key it cannot parse; a key from the server must
    // fail the login instead.
    std::panic::catch_unwind(|| mysql_common::crypto::encrypt(&clear, pem)).map_err(|_| {
        WireError::Handshake("the server's public key is not a PEM RSA key".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::mysql::Credentials;
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt as _;

    /// A MySQL 9.7 server's greeting (capabilities with TLS, `caching_sha2_password`).
    const GREETING: &str = "0a392e372e342d3200090000006544231f445f7f4000ffffff0200ffdf150000000000000000000059632a7a255d323d7c6961280063616368696e675f736861325f70617373776f726400";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Logs in against a server that sends `packets` (framed from sequence 0) and closes.
    fn login_against(packets: Vec<Vec<u8>>, tls: bool) -> Result<(), WireError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut server) = tokio::io::duplex(1 << 16);
            // The client's sequence numbers interleave with the server's: after the
            // greeting (0) and the response (1), the server's replies are 2, 4, ….
            for (index, payload) in packets.iter().enumerate() {
                let length = u32::try_from(payload.len()).unwrap().to_le_bytes();
                server.write_all(&length[..3]).await.unwrap();
                server
                    .write_all(&[u8::try_from(index * 2).unwrap_or(0)])
                    .await
                    .unwrap();
                server.write_all(payload).await.unwrap();
            }
            server.shutdown().await.unwrap();
            let credentials = Credentials::new("u", "p");
            let tls = if tls {
                ClientTls::Required { ca: None }
            } else {
                ClientTls::Off
            };
            let target = WireTarget {
                host: "127.0.0.1",
                port: 1,
                credentials: &credentials,
                tls: &tls,
            };
            let outcome = login(Box::new(client), &target).await.map(drop);
            drop(server);
            outcome
        })
    }

    #[test]
    fn a_real_greeting_then_ok_logs_in_and_a_refusal_keeps_its_code() {
        login_against(
            vec![
                hex(GREETING),
                vec![0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00],
            ],
            false,
        )
        .unwrap();
        let mut denied = vec![0xff, 0x15, 0x04, b'#'];
        denied.extend_from_slice(b"28000Access denied");
        let refused = login_against(vec![hex(GREETING), denied], false);
        assert!(matches!(refused, Err(WireError::Server(e)) if e.code == 1045));
        // A server that offers no TLS is refused when TLS is required.
        let mut plain = hex(GREETING);
        plain[23] &= !0x08; // CLIENT_SSL (0x0800), in the lower capability bytes
        let refused = login_against(vec![plain], true);
        assert!(matches!(refused, Err(WireError::Tls(m)) if m.contains("does not offer")));
    }

    proptest! {
        /// After a real greeting, whatever the server answers to the login, it ends and
        /// never panics.
        #[test]
        fn arbitrary_login_replies_never_panic(replies in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..4)) {
            let mut packets = vec![hex(GREETING)];
            packets.extend(replies);
            let _ = login_against(packets, false);
        }

        /// Whatever a server answers to a connection, the login ends (in an error, almost
        /// always) and never panics or hangs.
        #[test]
        fn arbitrary_greetings_never_panic(
            reply in proptest::collection::vec(any::<u8>(), 0..512),
            tls in any::<bool>(),
        ) {
            // One framed packet (sequence 0), so the greeting parser sees the bytes.
            let _ = login_against(vec![reply], tls);
        }
    }
}
