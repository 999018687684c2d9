/*
 * The Pod sandbox's process for the test node: it holds the Pod's namespaces,
 * reaps orphans and exits on SIGINT/SIGTERM. Built statically, so that the
 * image is this file alone and nothing is ever pulled for a sandbox.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction down = {0};
  down.sa_handler = stop;
  sigaction(SIGINT, &down, NULL);
  sigaction(SIGTERM, &down, NULL);
  struct sigaction child = {0};
  child.sa_handler = reap;
  child.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
