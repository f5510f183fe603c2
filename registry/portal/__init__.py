"""The provider and issuer portal: staff accounts of member organisations and their pages."""
