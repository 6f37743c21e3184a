"""Notifications to members: an in-app feed and email (instant or a daily digest), with brand controls."""
