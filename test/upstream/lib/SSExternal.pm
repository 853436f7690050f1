package SSExternal;
# Loaded through PERL5OPT before each upstream test file: turns the in-process
# Server::Starter::start_server(%opts) / stop_server / restart_server calls into
# an exec (or system) of the CLI named by START_SERVER_BIN, so the upstream
# suite exercises that executable. exec keeps the pid the test signals.
use strict;
use warnings;

my @BIN = split ' ', ($ENV{START_SERVER_BIN} || '');

if (@BIN) {
    require Server::Starter;
    no warnings 'redefine';
    *Server::Starter::start_server = \&start_server;
    *Server::Starter::stop_server = \&stop_server;
    *Server::Starter::restart_server = \&restart_server;
}

sub _opts { @_ == 1 ? %{ $_[0] } : @_ }

sub _as_list { my $v = shift; return () unless defined $v; ref $v ? @$v : ($v) }

sub start_server {
    my %o = _opts(@_);
    die "mandatory option ``exec'' is missing\n" unless ref $o{exec} eq 'ARRAY';
    my @args;
    push @args, "--port=$_" for _as_list($o{port});
    push @args, "--path=$_" for _as_list($o{path});
    for my $k (qw(interval log_file pid_file dir signal_on_hup signal_on_term backlog envdir
                  auto_restart_interval kill_old_delay status_file)) {
        next unless defined $o{$k};
        (my $flag = $k) =~ tr/_/-/;
        push @args, "--$flag=$o{$k}";
    }
    push @args, '--enable-auto-restart' if $o{enable_auto_restart};
    if ($o{daemonize}) {
        push @args, '--daemonize';
        push @args, '--log-file=/dev/stderr' unless defined $o{log_file};
    }
    delete $ENV{START_SERVER_BIN};
    $ENV{ENABLE_AUTO_RESTART} = $o{enable_auto_restart}
        if defined $o{enable_auto_restart} && !$o{enable_auto_restart};
    my @cmd = (@BIN, @args, '--', @{ $o{exec} });
    print STDERR "SSExternal: @cmd\n" if $ENV{SS_EXTERNAL_DEBUG};
    exec { $cmd[0] } @cmd or die "SSExternal: exec $cmd[0] failed: $!";
}

sub _client {
    my @cmd = (@BIN, @_);
    local $ENV{START_SERVER_BIN};
    delete $ENV{START_SERVER_BIN};
    system(@cmd) == 0 or die "SSExternal: '@cmd' failed: $?";
}

sub stop_server {
    my %o = _opts(@_);
    _client('--stop', "--pid-file=$o{pid_file}");
}

sub restart_server {
    my %o = _opts(@_);
    _client('--restart', "--pid-file=$o{pid_file}", "--status-file=$o{status_file}");
}

1;
