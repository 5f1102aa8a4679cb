"""Policy data (what is safe, what is dangerous) and the judges that apply it to parsed views."""
