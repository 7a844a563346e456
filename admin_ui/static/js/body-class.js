// Marks the page as JavaScript-enabled before it paints, as GOV.UK Frontend expects.
// Kept in a file because the Content-Security-Policy allows no inline scripts.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
