// Package embedded runs LND inside the l402d process (integrated mode),
// the way Lightning Terminal's integrated mode does: it builds an
// lnd.Config from a small Config, runs lnd.Main in a goroutine, creates or
// unlocks the wallet over LND's own WalletUnlocker and State RPCs, and
// hands back an invoices.LNDConfig so that l402d's normal lndclient
// backend talks to the embedded node exactly as it talks to a remote one.
//
// What it may touch:
//
//   - its Config.LndDir (LND's whole directory: wallet, channel DB, TLS
//     cert, macaroons, logs) and the two secret files it names in
//     Config.WalletDir (the wallet password and the seed, both 0600);
//   - the RPC and P2P listen addresses it is given;
//   - process-wide state that lnd itself owns: lnd's package-level
//     loggers, its signal interceptor (lnd's signal.Intercept may be active
//     only once per process) and the goroutines of lnd.Main. Hence at most
//     one Node runs per process, and it cannot be restarted in-process: a
//     stopped Node means the process should exit.
//
// It detaches lnd's interceptor from OS signals so that the embedding
// program's own SIGINT/SIGTERM handling decides the order of shutdown:
// the program stops its own work first, then calls Node.Stop.
//
// It never imports l402d's other packages except invoices (for the
// LNDConfig it returns) and never logs secrets.
package embedded
