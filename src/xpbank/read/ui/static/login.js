/* The login form: where to go next, and why we are here again. */
'use strict';

(() => {
  const params = new URLSearchParams(window.location.search);
  const next = params.get('next');
  if (next && next.startsWith('/ui')) document.getElementById('next').value = next;
  const messages = {
    invalid: 'That token was not accepted.',
    scope: 'This token may not see that page (it lacks the scope). Log in with another token.',
    'cross-site': 'A link from another site tried to log you in with a token: refused. Paste your own token here.',
    'logged-out': 'Logged out.',
  };
  const message = messages[params.get('error')];
  const problem = document.getElementById('login-problem');
  if (message) {
    problem.textContent = message;
    problem.hidden = false;
  }
  document.getElementById('token').focus();
})();
