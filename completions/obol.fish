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
complete -c obol -n "__fish_obol_needs_command" -f -a "serve" -d 'Run the daemons: the seller\'s payment gate'
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
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l upstream -d 'Where paid requests go, e.g. http://127.0.0.1:9000' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l price -d 'Price per request in the asset\'s units (USDC), e.g. 0.01' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l chain -d 'Chain to be paid on: a name (base, base-sepolia, ...) or a CAIP-2 id (eip155:84532)' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l pay-to -d 'Address that receives the payments (defaults to the file\'s `wallet`)' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l path -d 'URL path the offer is sold under [default: /services/NAME]' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l description -d 'Human description shown in the 402 answer' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l upstream-auth -d 'Authorization header value sent to the upstream on paid requests (e.g. "Bearer sk-...")' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l max-timeout-seconds -d 'How long a buyer\'s signed authorization may stay valid, in seconds' -r
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s o -l output -r -f -a "table\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from pause" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from resume" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an offer, or update it in place when NAME exists (price, upstream, ...)'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "list" -d 'List offers'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete an offer; the verifier stops charging for it on its next reload'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "pause" -d 'Stop serving an offer without deleting it'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Serve a paused offer again'
complete -c obol -n "__fish_obol_using_subcommand sell; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay help" -f -a "pay" -d 'Make one paid HTTP request: probe, read the 402, sign, send, print the response'
complete -c obol -n "__fish_obol_using_subcommand buy; and not __fish_seen_subcommand_from pay help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s X -l request -d 'HTTP method' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s d -l data -d 'Request body; @FILE reads a file, @- reads stdin' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -s H -l header -d 'Extra request header, "Name: value" (repeatable)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l network -d 'Only pay on this network (name or CAIP-2 id)' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l max-amount -d 'Most this one request may cost, in USDC' -r
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from pay" -l timeout -d 'Time limit for each HTTP exchange with the seller, in seconds' -r
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
complete -c obol -n "__fish_obol_using_subcommand buy; and __fish_seen_subcommand_from help" -f -a "pay" -d 'Make one paid HTTP request: probe, read the 402, sign, send, print the response'
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
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier help" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier help" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier help" -f -a "verifier" -d 'The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy'
complete -c obol -n "__fish_obol_using_subcommand serve; and not __fish_seen_subcommand_from verifier help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l listen -d 'Address to listen on (":8080" means all interfaces)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l offers-file -d 'The offers file (pricing.yaml) to read and write' -r -F
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l facilitator -d 'Facilitator URL (overrides the offers file\'s `facilitatorURL`)' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l mode -d 'Which endpoints to serve' -r -f -a "forward-auth\t'Only `/verify` for Traefik ForwardAuth (verifies, never settles unless --settle-before-grant)'
proxy\t'Only the reverse proxy: offers\' paths are forwarded upstream, settled after success'
both\t'Both'"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l verify-timeout -d 'Facilitator /verify time limit' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l settle-timeout -d 'Facilitator /settle time limit' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l reload-interval -d 'How often to check the offers file for changes' -r
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -l settle-before-grant -d 'In ForwardAuth mode, settle the payment before answering 200 (costs one settlement wait)'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from verifier" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from help" -f -a "verifier" -d 'The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy'
complete -c obol -n "__fish_obol_using_subcommand serve; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand completion" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c obol -n "__fish_obol_using_subcommand completion" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c obol -n "__fish_obol_using_subcommand completion" -s h -l help -d 'Print help'
complete -c obol -n "__fish_obol_using_subcommand completion" -s V -l version -d 'Print version'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve completion help" -f -a "sell" -d 'Publish services for sale: offers that `obol serve verifier` charges for'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve completion help" -f -a "buy" -d 'Pay for services sold with x402'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve completion help" -f -a "wallet" -d 'The buyer\'s key: import it into the OS keyring, show its address'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve completion help" -f -a "serve" -d 'Run the daemons: the seller\'s payment gate'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve completion help" -f -a "completion" -d 'Print shell completions (bash, zsh, fish)'
complete -c obol -n "__fish_obol_using_subcommand help; and not __fish_seen_subcommand_from sell buy wallet serve completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "create" -d 'Create an offer, or update it in place when NAME exists (price, upstream, ...)'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "list" -d 'List offers'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "delete" -d 'Delete an offer; the verifier stops charging for it on its next reload'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "pause" -d 'Stop serving an offer without deleting it'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from sell" -f -a "resume" -d 'Serve a paused offer again'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from buy" -f -a "pay" -d 'Make one paid HTTP request: probe, read the 402, sign, send, print the response'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from wallet" -f -a "import" -d 'Store a private key in the OS keyring (read from --private-key-file or stdin)'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from wallet" -f -a "address" -d 'Print the address of the active wallet'
complete -c obol -n "__fish_obol_using_subcommand help; and __fish_seen_subcommand_from serve" -f -a "verifier" -d 'The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy'
