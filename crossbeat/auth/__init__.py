"""Accounts and authentication (issue #3): users, roles, sign-in with a second factor,
sessions, API tokens for machine feeds, CSRF tokens.

Modules: :mod:`~crossbeat.auth.accounts` (users and their management),
:mod:`~crossbeat.auth.login` (two-step sign-in and lockout),
:mod:`~crossbeat.auth.sessions` (timeouts and logout), :mod:`~crossbeat.auth.tokens`
(API tokens), :mod:`~crossbeat.auth.passwords` (policy and argon2id),
:mod:`~crossbeat.auth.totp` (one-time codes), :mod:`~crossbeat.auth.csrf`,
:mod:`~crossbeat.auth.roles`, :mod:`~crossbeat.auth.errors`,
:mod:`~crossbeat.auth.events` (hook for the audit log) and
:mod:`~crossbeat.auth.tables`.

This package imports nothing at import time, so that importing one module does not
pull in the others.
"""
