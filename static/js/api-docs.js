// The API reference page (/api/v1/docs) loads nothing from other origins. Redoc's side menu ends with
// its vendor's logo, an <img> pointing at a CDN that the page's Content-Security-Policy refuses (which
// the browser reports as an error): such an image is hidden instead of requested. React sets an
// image's address both as an attribute and, once mounted, as the property: both are guarded.
// Loaded before Redoc.
(function () {
  "use strict";

  function foreign(value) {
    var url = new URL(String(value), document.baseURI);
    return url.protocol !== "data:" && url.origin !== window.location.origin;
  }

  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src" && foreign(value)) {
      this.hidden = true;
      return undefined;
    }
    return setAttribute.call(this, name, value);
  };

  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      if (foreign(value)) {
        this.hidden = true;
        return;
      }
      src.set.call(this, value);
    },
  });
})();
