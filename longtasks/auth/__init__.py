"""Who is calling: bearer tokens a host application signs (and longtasks only verifies), and the
short-lived tickets that stand in for them where a URL is all a browser can send."""
