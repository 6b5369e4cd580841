// Package tcpbind claims a TCP address before a server is ready to serve
// it: Bind binds a socket without listening, so the port is taken (a
// second server fails at once) while clients are refused, as if nothing
// were there; Listen starts accepting once everything the server serves is
// in place. A process manager or a script that waits for the port then
// finds a server that answers.
package tcpbind
