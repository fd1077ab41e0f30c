//! Which end of a session this is: the client opens odd stream and ping ids and masks its
//! WebSocket frames, the server uses even ids and does not.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}
