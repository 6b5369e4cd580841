// Package bench drives many simulated phones ([phonesim]) at a CAPF server
// and measures it: sessions attempted, succeeded and failed, enrollments per
// second, latency percentiles and, when it started the server as a child
// process, the server's CPU time per enrollment and peak resident memory.
//
// A run has three phases. Set-up (not timed): start or reach the server,
// provision the devices through the server's SQLite database, and generate a
// small pool of phone key pairs, so that the figures measure the server and
// not the client's key generation. Hold (not timed): optionally connect
// Waiting phones that stay in key generation, sending REQUEST_IN_PROGRESS,
// as slow phones do for minutes. Timed: run Phones phones on Concurrency
// workers; the clock stops when the last one ends its session.
//
// Server CPU time is read from /proc/PID/stat (utime+stime, at the kernel's
// 100 ticks per second, so ±10 ms per reading) just before and after the
// timed phase; peak RSS is VmHWM of /proc/PID/status at the end of the run.
// Both need Linux and a server started as a child process.
package bench
