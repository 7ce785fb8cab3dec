# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_obol_global_optspecs
    string join \n log-format= v/verbose h/help V/version
end

function __fish_obol_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_obol_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_obol_using_subcommand
    set -l cmd (__fish_obol_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c obol -n "__fish_obol_needs_command" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_needs_command" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_needs_command" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_needs_command" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_needs_command" -f -a "sell" -d 'Publish services for sale: offers that `obol serve verifier` charges for'
complete -c obol -n "__fish_obol_needs_command" -f -a "buy" -d 'Pay for services sold with x402'
complete -c obol -n "__fish_obol_needs_command" -f -a "wallet" -d 'The buyer\'s key: import it into the OS keyring, show its address'
complete -c obol -n "__fish_obol_needs_command" -f -a "serve" -d 'Run the daemons: the seller\'s payment gate and the buyer\'s paying sidecar'
complete -c obol -n "__fish_obol_needs_command" -f -a "metrics" -d 'What the seller earned: revenue and settlement per offer and chain'
complete -c obol -n "__fish_obol_needs_command" -f -a "auth" -d 'Sign in for the stack\'s authenticated RPC: the ID token eRPC sends upstream'
complete -c obol -n "__fish_obol_needs_command" -f -a "manifests" -d 'Print the Kubernetes manifests: CRDs, verifier, RBAC, monitoring, eRPC auth'
complete -c obol -n "__fish_obol_needs_command" -f -a "completion" -d 'Print shell completions (bash, zsh, fish)'
complete -c obol -n "__fish_obol_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -f -a "create" -d 'Create an offer, or update it in place when NAME exists (price, upstream, ...)'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -f -a "list" -d 'List offers'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -f -a "delete" -d 'Delete an offer; the verifier stops charging for it on its next reload'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -f -a "pause" -d 'Stop serving an offer without deleting it'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -f -a "resume" -d 'Serve a paused offer again'
complete -c obol -n "__fish_obol_using_subcommand sell; and not __fish_seen_subcommand_from create list delete pause resume help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l upstream -d 'Where paid requests go. Offers file: a URL, e.g. http://127.0.0.1:9000. Cluster: a Service as SERVICE[.NAMESPACE]:PORT (e.g. ollama.llm:11434; the namespace defaults to the offer\'s), also written http://SERVICE.NAMESPACE.svc.cluster.local:PORT' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l price -d 'Price per request in the asset\'s units (USDC), e.g. 0.01' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l chain -d 'Chain to be paid on: a name (base, base-sepolia, ...) or a CAIP-2 id (eip155:84532)' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l pay-to -d 'Address that receives the payments [default: the offers file\'s `wallet`; on a cluster, the verifier\'s `wallet`]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l path -d 'URL path the offer is sold under [default: /services/NAME]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l description -d 'Human description shown in the 402 answer' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l upstream-auth -d 'Authorization header value sent to the upstream on paid requests (e.g. "Bearer sk-..."). Offers file only' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l max-timeout-seconds -d 'How long a buyer\'s signed authorization may stay valid, in seconds' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l route -d 'Declare a route under the offer\'s path (repeat for more): `path=/x` is that path only, `path=/x/*` it and everything under it, `path=/` the offer\'s root, `path=/*` the rest; optional `methods=POST|GET` (metadata, not enforced), `gate=paid|free` (default paid), `price=USDC` (instead of --price), `summary=TEXT` (no \',\'). The most specific path wins. Once any route is declared, the offer\'s other paths are refused (404). Replaces the offer\'s routes on update. E.g. --route "path=/v1/chat/completions,methods=POST" --route "path=/v1/models,gate=free"' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l gate -d 'Cluster only: how a paid request reaches the upstream. `proxy`: through the verifier, settled after the upstream answered 2xx (the buyer pays only for a success). `forward-auth`: Traefik asks the verifier first, the payment is settled before the upstream is asked (paid even if it then fails; with the verifier\'s `verifyOnly: true`, access without payment). [default: the offer\'s, else proxy]' -r -f -a "proxy\t'The HTTPRoute\'s backend is the verifier, which forwards a paid request to the upstream and settles only after the upstream answered 2xx: the buyer pays for success only'
forward-auth\t'The HTTPRoute goes to the upstream through a Traefik forwardAuth Middleware: the verifier settles before it grants (or, with `verifyOnly: true`, grants without payment)'"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l no-routes -d 'Remove the offer\'s declared routes (its whole path is paid at --price again)'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l kube -d 'Use the cluster (ServiceOffers) even when an offers file is named'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l kube -d 'Use the cluster (ServiceOffers) even when an offers file is named'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s A -l all-namespaces -d 'On a cluster: the offers of every namespace'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l kube -d 'Use the cluster (ServiceOffers) even when an offers file is named'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l kube -d 'Use the cluster (ServiceOffers) even when an offers file is named'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l kube -d 'Use the cluster (ServiceOffers) even when an offers file is named'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an offer, or update it in place when NAME exists (price, upstream, ...)'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "list" -d 'List offers'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete an offer; the verifier stops charging for it on its next reload'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "pause" -d 'Stop serving an offer without deleting it'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Serve a paused offer again'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -f -a "pay" -d 'Make one paid HTTP request: probe, read the 402, sign, send, print the response'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -f -a "request" -d 'Pre-sign a pool of payments for a model and hand it to the buyer sidecar as a PurchaseRequest; waits until the sidecar reports it Ready'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -f -a "list" -d 'List the PurchaseRequests of a namespace: model, price, remaining, spent, caps, Ready'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay request list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s X -l request -d 'HTTP method' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s d -l data -d 'Request body; @FILE reads a file, @- reads stdin' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s H -l header -d 'Extra request header, "Name: value" (repeatable)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l network -d 'Only pay on this network (name or CAIP-2 id)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l max-amount -d 'Most this one request may cost, in USDC' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l timeout -d 'Time limit for each HTTP exchange with the seller, in seconds' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l max-timeout -d 'Longest validity, in seconds, a seller\'s 402 may ask for the signed payment (maxTimeoutSeconds); a 402 asking for more is refused before signing' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l retries -d 'How often to resend the same payment after a timeout or 5xx (never a new signature)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l private-key-file -d 'Read the private key (hex) from this file instead of the keyring' -r -F
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l signer-url -d 'Sign with the stack\'s remote-signer at this URL instead of a local key' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s o -l output -d '`table` prints the body and a receipt line; `json` prints one JSON object' -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l endpoint -d 'The seller\'s x402-gated chat endpoint (a base URL gets /v1/chat/completions)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l model -d 'The seller\'s model id; served by the sidecar as paid/MODEL' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l count -d 'How many payments to pre-sign (1 to 2500)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l refill-threshold -d 'With --auto-refill: refill when fewer than T authorizations remain [default: COUNT / 5]' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l refill-count -d 'With --auto-refill: authorizations to sign per refill [default: COUNT]' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l max-total -d 'Cap on the payments the sidecar ever makes for this pool (at least COUNT)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l max-spend-per-day -d 'Cap on the sidecar\'s spend per UTC day, in USDC (e.g. 0.5)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l max-amount -d 'Most one request may cost, in USDC' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l network -d 'Only pay on this network (name or CAIP-2 id)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l auth-ttl -d 'How long each authorization stays valid: e.g. 30d, 12h, 90m (at least 10m)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l wait-timeout -d 'How long to wait for the sidecar to report the pool Ready' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l private-key-file -d 'Read the private key (hex) from this file instead of the keyring' -r -F
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l signer-url -d 'Sign with the stack\'s remote-signer at this URL instead of a local key' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l auto-refill -d 'Let a signer refill the pool when it runs low (writes autoRefill.enabled)'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l force -d 'Sign even when the balance cannot be checked or does not cover the pool'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l replace -d 'Drop the existing pool of NAME (also when the seller\'s terms changed) instead of topping it up'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l no-wait -d 'Return after the apply, without waiting for the sidecar'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -l dry-run -d 'Run every check and print the PurchaseRequest (without authorizations); sign and apply nothing'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from request" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from help" -f -a "pay" -d 'Make one paid HTTP request: probe, read the 402, sign, send, print the response'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from help" -f -a "request" -d 'Pre-sign a pool of payments for a model and hand it to the buyer sidecar as a PurchaseRequest; waits until the sidecar reports it Ready'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the PurchaseRequests of a namespace: model, price, remaining, spent, caps, Ready'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -f -a "import" -d 'Store a private key in the OS keyring (read from --private-key-file or stdin)'
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -f -a "address" -d 'Print the address of the active wallet'
complete -c obol -n "__fish_obol_using_subcommand wallet; and not __fish_seen_subcommand_from import address help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from import" -l private-key-file -d 'File holding the hex private key (default: read standard input)' -r -F
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from import" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from import" -l insecure-storage -d 'Skip the keyring and store the key in the 0600 file directly'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from import" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -l private-key-file -d 'Read the private key (hex) from this file instead of the keyring' -r -F
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -l signer-url -d 'Sign with the stack\'s remote-signer at this URL instead of a local key' -r
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from address" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from help" -f -a "import" -d 'Store a private key in the OS keyring (read from --private-key-file or stdin)'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from help" -f -a "address" -d 'Print the address of the active wallet'
complete -c obol -n "__fish_obol_using_subcommand wallet; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -f -a "verifier" -d 'The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -f -a "buyer" -d 'The buyer sidecar: an OpenAI-compatible proxy that pays sellers\' 402s from a pool of pre-signed authorizations (or a live signer) under spend caps'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier buyer help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l listen -d 'Address to listen on (":8080" means all interfaces). In modes proxy and both this is the public listener: it carries the paying proxy and /healthz, /readyz, nothing else' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l internal-listen -d 'Listener for the cluster network: ForwardAuth (/verify) and /metrics. Without it they are served on --listen only in mode forward-auth or when --listen is loopback; mode both on a non-loopback --listen refuses to start without it' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l facilitator -d 'Facilitator URL (overrides the offers file\'s `facilitatorURL`)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l mode -d 'Which endpoints to serve' -r -f -a "forward-auth\t'Only `/verify` for Traefik ForwardAuth (verifies, never settles unless --settle-before-grant)'
proxy\t'Only the reverse proxy: offers\' paths are forwarded upstream, settled after success'
both\t'Both'"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l state -d 'Where payment state lives (used payments, settlements in flight): a file for one verifier process (kept across restarts), `redis://[user:password@]host:6379/0` or `rediss://…` (TLS) shared by replicas (`?prefix=NAME` for the key prefix, default obol:x402), or `memory` (forgotten on restart: a verify-only payment could be used again). [default: payment-state.redb next to the offers file]' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l verify-timeout -d 'Facilitator /verify time limit' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l settle-timeout -d 'Facilitator /settle time limit' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l reload-interval -d 'How often to check the offers file for changes' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l route-source -d 'Where routes come from: the offers file, the cluster\'s ServiceOffers, or both' -r -f -a "file\t'The offers file\'s routes'
kube\t'The cluster\'s ServiceOffers; the offers file gives only wallet, chain, facilitatorURL and verifyOnly'
both\t'ServiceOffers first, then the offers file\'s routes'"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s n -l namespace -d 'Namespace [default: the context\'s, else `default`; `serve verifier`: all namespaces]' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l header-timeout -d 'Close a connection that has not sent a complete request head this long after it opened, or (HTTP/1.1) after its previous response: slow or silent clients cannot hold connections open. An idle HTTP/1.1 keep-alive connection is closed after this too' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l idle-timeout -d 'Close a connection on which no request started for this long (HTTP/2 included), after the response it may still be sending' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l max-connections -d 'Open connections at most; at the cap no new one is accepted until one closes (they wait in the kernel\'s queue). Lowered to fit the open-file limit (its soft value is raised to the hard one first): at most the limit minus max(64, a quarter of it)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l max-in-flight -d 'Requests handled at once at most; more are answered 503 {"error":"overloaded"} with Retry-After: 1 (/healthz and /readyz always answer). Lowered to fit the open-file limit: at most a quarter of it, minus 32' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l kube-watch-timeout -d 'Length of each ServiceOffer watch request before it is resumed' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l settle-before-grant -d 'ForwardAuth: settle the payment before answering 200 even when the offers file says `verifyOnly: true`. Settling before the grant is the default; this overrides the file'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l verify-only -d 'ForwardAuth: answer 200 after the facilitator\'s /verify without settling: ACCESS WITHOUT PAYMENT (the buyer\'s authorization is used once, nothing moves on chain; counted as verify_only_grants, never as revenue). Also `verifyOnly: true` in the offers file'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l listen -d 'Address to listen on (":8402" means all interfaces: anyone who reaches it can spend)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l admin-token-file -d 'File holding a bearer token that lets peers off loopback call /admin/* (without it, /admin/* answers loopback peers only)' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l max-timeout -d 'Longest validity, in seconds, a seller\'s 402 may ask of a live signature (maxTimeoutSeconds); a 402 asking for more is refused before signing' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l config-dir -d 'Directory of per-upstream config files [default: $XDG_CONFIG_HOME/obol/buyer/config]' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l auths-dir -d 'Directory of per-upstream auth files [default: $XDG_CONFIG_HOME/obol/buyer/auths]' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l state -d 'State file: consumed authorizations and budgets [default: $XDG_STATE_HOME/obol/buyer-state.json]' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l source -d 'Where upstreams come from' -r -f -a "files\t'Per-upstream config and auth files (--config-dir, --auths-dir)'
kube\t'The PurchaseRequests of one namespace (-n), watched; their status is written back'
both\t'Both (an upstream name defined twice: the files\' one wins)'"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -s n -l namespace -d 'Namespace of the PurchaseRequests [default: the pod\'s namespace in a cluster, else the kubeconfig context\'s, else `default`]' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l kubeconfig -d 'Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account]' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l context -d 'Kubeconfig context [default: the current context]' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l kube-watch-timeout -d 'Length of each PurchaseRequest watch request before it is resumed' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l reload-interval -d 'How often to re-read the upstreams (POST /admin/reload also triggers a reload)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l max-amount -d 'Most one payment the sidecar signs may cost, live or as a refill, in USDC (pre-signed pools are not affected)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l private-key-file -d 'Read the private key (hex) from this file instead of the keyring' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l signer-url -d 'Sign with the stack\'s remote-signer at this URL instead of a local key' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l header-timeout -d 'Close a connection that has not sent a complete request head this long after it opened, or (HTTP/1.1) after its previous response: slow or silent clients cannot hold connections open. An idle HTTP/1.1 keep-alive connection is closed after this too' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l idle-timeout -d 'Close a connection on which no request started for this long (HTTP/2 included), after the response it may still be sending' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l max-connections -d 'Open connections at most; at the cap no new one is accepted until one closes (they wait in the kernel\'s queue). Lowered to fit the open-file limit (its soft value is raised to the hard one first): at most the limit minus max(64, a quarter of it)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l max-in-flight -d 'Requests handled at once at most; more are answered 503 {"error":"overloaded"} with Retry-After: 1 (/healthz and /readyz always answer). Lowered to fit the open-file limit: at most a quarter of it, minus 32' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from buyer" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from help" -f -a "verifier" -d 'The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from help" -f -a "buyer" -d 'The buyer sidecar: an OpenAI-compatible proxy that pays sellers\' 402s from a pool of pre-signed authorizations (or a live signer) under spend caps'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -f -a "earnings" -d 'Revenue, charged requests, settlement rate and last payment per offer and chain'
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -f -a "rules" -d 'Print the Prometheus recording and alerting rules that `earnings` reads'
complete -c obol -n "__fish_obol_using_subcommand metrics; and not __fish_seen_subcommand_from earnings rules help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l prometheus -d 'Prometheus base URL, e.g. http://127.0.0.1:9090' -r
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l kube-namespace -d 'Namespace of the Prometheus service (with --kube)' -r
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l kube-service -d 'Prometheus service as NAME:PORT (with --kube); kube-prometheus-stack also has `<release>-kube-prometheus-prometheus:9090`' -r
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l kubeconfig -d 'Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account)' -r -F
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l context -d 'Kubeconfig context (default: the current context)' -r
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l scrape -d 'Read a verifier\'s /metrics instead of Prometheus: lifetime totals since it started' -r
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l window -d 'Revenue window (Prometheus only) [default: 24h]' -r -f -a "24h\t'The last 24 hours'
7d\t'The last 7 days'"
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l by -d 'Rows per offer (and chain) or per chain' -r -f -a "offer\t'One row per offer and chain, then a total per chain'
chain\t'One row per chain'"
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l offer -d 'Only this offer: NAMESPACE/NAME (offers of `obol sell create` are in namespace `local`), or NAME in any namespace' -r
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -s o -l output -d '`table` for people; `json` for scripts (the same numbers, stable field names)' -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -l kube -d 'Query the cluster\'s Prometheus through the Kubernetes API server (uses the kubeconfig)'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from earnings" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from rules" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from rules" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from rules" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from rules" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from help" -f -a "earnings" -d 'Revenue, charged requests, settlement rate and last payment per offer and chain'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from help" -f -a "rules" -d 'Print the Prometheus recording and alerting rules that `earnings` reads'
complete -c obol -n "__fish_obol_using_subcommand metrics; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -f -a "login" -d 'Sign in with your browser and hand the ID token to eRPC'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -f -a "refresh" -d 'Get a fresh ID token with the stored refresh token and hand it to eRPC'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -f -a "status" -d 'Who is signed in, until when, and whether the Secret holds that token'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -f -a "logout" -d 'Sign out: revoke the refresh token, empty the Secret, delete what is stored'
complete -c obol -n "__fish_obol_using_subcommand auth; and not __fish_seen_subcommand_from login refresh status logout help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l issuer -d 'OpenID Connect issuer [login default: https://accounts.google.com; later commands: the one you logged in to]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l client-id -d 'OAuth client id (Google: a "Desktop app" client)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l client-secret -d 'OAuth client secret, if the client has one (Google Desktop clients do)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l kubeconfig -d 'Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account)' -r -F
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l context -d 'Kubeconfig context (default: the current context)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l secret-namespace -d 'Namespace of the token Secret and of the eRPC Deployment [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l secret-name -d 'Name of the token Secret [default: obol-oauth-token]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l erpc-deployment -d 'The eRPC Deployment restarted after a token change [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l callback-port -d 'Listen for the browser\'s redirect on this port of 127.0.0.1 [default: a free one]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l timeout -d 'How long to wait for the sign-in' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l login-hint -d 'Preselect this account on the issuer\'s sign-in page (e.g. your email)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l no-browser -d 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -l no-restart -d 'Do not restart eRPC after writing the Secret'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from login" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l issuer -d 'OpenID Connect issuer [login default: https://accounts.google.com; later commands: the one you logged in to]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l client-id -d 'OAuth client id (Google: a "Desktop app" client)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l client-secret -d 'OAuth client secret, if the client has one (Google Desktop clients do)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l kubeconfig -d 'Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account)' -r -F
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l context -d 'Kubeconfig context (default: the current context)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l secret-namespace -d 'Namespace of the token Secret and of the eRPC Deployment [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l secret-name -d 'Name of the token Secret [default: obol-oauth-token]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l erpc-deployment -d 'The eRPC Deployment restarted after a token change [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l from-secret -d 'Read client_id, client_secret, refresh_token (and issuer) from this Secret instead of this machine\'s store' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l watch -d 'Keep refreshing before each token expires, until stopped (fit to run in a pod)'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -l no-restart -d 'Do not restart eRPC after writing the Secret'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from refresh" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -l kubeconfig -d 'Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account)' -r -F
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -l context -d 'Kubeconfig context (default: the current context)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -l secret-namespace -d 'Namespace of the token Secret and of the eRPC Deployment [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -l secret-name -d 'Name of the token Secret [default: obol-oauth-token]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -l erpc-deployment -d 'The eRPC Deployment restarted after a token change [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -s o -l output -d '`table` for people; `json` for scripts (never contains a token)' -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l issuer -d 'OpenID Connect issuer [login default: https://accounts.google.com; later commands: the one you logged in to]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l client-id -d 'OAuth client id (Google: a "Desktop app" client)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l client-secret -d 'OAuth client secret, if the client has one (Google Desktop clients do)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l kubeconfig -d 'Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account)' -r -F
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l context -d 'Kubeconfig context (default: the current context)' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l secret-namespace -d 'Namespace of the token Secret and of the eRPC Deployment [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l secret-name -d 'Name of the token Secret [default: obol-oauth-token]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l erpc-deployment -d 'The eRPC Deployment restarted after a token change [default: erpc]' -r
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l no-revoke -d 'Do not revoke the refresh token at the issuer (only forget it here)'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -l no-restart -d 'Do not restart eRPC after emptying the Secret'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from logout" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "login" -d 'Sign in with your browser and hand the ID token to eRPC'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "refresh" -d 'Get a fresh ID token with the stored refresh token and hand it to eRPC'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "status" -d 'Who is signed in, until when, and whether the Secret holds that token'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "logout" -d 'Sign out: revoke the refresh token, empty the Secret, delete what is stored'
complete -c obol -n "__fish_obol_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand manifests" -s n -l namespace -d 'Namespace of the verifier' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l image -d 'Container image of obol [default: ghcr.io/obolnetwork/obol:<this version>]' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l chain -d '`chain` of the verifier\'s base config, for offers that name none' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l facilitator -d '`facilitatorURL` of the verifier\'s base config' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l wallet -d '`wallet` of the verifier\'s base config: payTo of offers that name none' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l replicas -d 'Verifier replicas. More than one needs --state: replicas share the record of used payments through Redis (with a PodDisruptionBudget keeping one up)' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l state -d 'A shared payment-state store for the verifier, `redis://[user:password@]host:6379/0` or `rediss://…` (TLS), written into the Secret x402-verifier-state (never into the Deployment). Without it: one replica with its state file on a PersistentVolumeClaim' -r
complete -c obol -n "__fish_obol_using_subcommand manifests" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand manifests" -l no-monitoring -d 'Leave out ServiceMonitor, PodMonitor and PrometheusRule (no prometheus-operator)'
complete -c obol -n "__fish_obol_using_subcommand manifests" -l no-erpc -d 'Leave out the eRPC token Secret, its Roles and bindings, and the eRPC values'
complete -c obol -n "__fish_obol_using_subcommand manifests" -l auth-refresher -d 'Also render a Deployment running `obol auth refresh --watch --from-secret erpc/nodecore-oauth-refresh` (keeps the eRPC token fresh without a laptop), with a Role that may read and update only that grant Secret'
complete -c obol -n "__fish_obol_using_subcommand manifests" -l verify-only -d 'Access WITHOUT payment for forward-auth offers: the verifier\'s base config says `verifyOnly: true`, so a verified payment is granted and never settled (nothing moves on chain; counted as verify_only_grants, never as revenue). Without it, forward-auth offers are settled before they are granted, and proxy offers (the default) after the upstream succeeded'
complete -c obol -n "__fish_obol_using_subcommand manifests" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand manifests" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand manifests" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand completion" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand completion" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand completion" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand completion" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "sell" -d 'Publish services for sale: offers that `obol serve verifier` charges for'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "buy" -d 'Pay for services sold with x402'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "wallet" -d 'The buyer\'s key: import it into the OS keyring, show its address'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "serve" -d 'Run the daemons: the seller\'s payment gate and the buyer\'s paying sidecar'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "metrics" -d 'What the seller earned: revenue and settlement per offer and chain'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "auth" -d 'Sign in for the stack\'s authenticated RPC: the ID token eRPC sends upstream'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "manifests" -d 'Print the Kubernetes manifests: CRDs, verifier, RBAC, monitoring, eRPC auth'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "completion" -d 'Print shell completions (bash, zsh, fish)'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve metrics auth manifests completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "create" -d 'Create an offer, or update it in place when NAME exists (price, upstream, ...)'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "list" -d 'List offers'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "delete" -d 'Delete an offer; the verifier stops charging for it on its next reload'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "pause" -d 'Stop serving an offer without deleting it'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "resume" -d 'Serve a paused offer again'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from buy" -f -a "pay" -d 'Make one paid HTTP request: probe, read the 402, sign, send, print the response'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from buy" -f -a "request" -d 'Pre-sign a pool of payments for a model and hand it to the buyer sidecar as a PurchaseRequest; waits until the sidecar reports it Ready'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from buy" -f -a "list" -d 'List the PurchaseRequests of a namespace: model, price, remaining, spent, caps, Ready'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from wallet" -f -a "import" -d 'Store a private key in the OS keyring (read from --private-key-file or stdin)'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from wallet" -f -a "address" -d 'Print the address of the active wallet'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from serve" -f -a "verifier" -d 'The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from serve" -f -a "buyer" -d 'The buyer sidecar: an OpenAI-compatible proxy that pays sellers\' 402s from a pool of pre-signed authorizations (or a live signer) under spend caps'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from metrics" -f -a "earnings" -d 'Revenue, charged requests, settlement rate and last payment per offer and chain'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from metrics" -f -a "rules" -d 'Print the Prometheus recording and alerting rules that `earnings` reads'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "login" -d 'Sign in with your browser and hand the ID token to eRPC'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "refresh" -d 'Get a fresh ID token with the stored refresh token and hand it to eRPC'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "status" -d 'Who is signed in, until when, and whether the Secret holds that token'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "logout" -d 'Sign out: revoke the refresh token, empty the Secret, delete what is stored'
